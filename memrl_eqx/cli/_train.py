"""`memrl-eqx train`: a new run, or `--resume RUN_DIR` to continue one.

Training runs in chunks of whole updates (one compilation): after each chunk
its rows are logged, and every `checkpoint_every` steps (and at the end) the
whole training state is checkpointed with the chunk count. A resumed run loads
the checkpoint, drops the log rows written after it, and runs the remaining
chunks, so an interrupted and resumed run logs and computes exactly what an
uninterrupted one does.
"""

import contextlib
import datetime
import importlib.metadata
import math
import os
import signal
import sys
import time
from typing import Any

from . import _run
from ._build import build_algorithm, make_env
from ._plot import plot_curves


class _Interrupts:
    """SIGINT and SIGTERM raise `KeyboardInterrupt`, except inside `critical()`,
    where they wait for the block to end (so that logging a chunk and
    checkpointing it happen together or not at all)."""

    def __init__(self):
        self._depth, self._pending, self._previous = 0, False, {}

    def _handle(self, signum, frame):
        if self._depth:
            self._pending = True
        else:
            raise KeyboardInterrupt

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: keep the default behaviour
            pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @contextlib.contextmanager
    def critical(self):
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                self._pending = False
                raise KeyboardInterrupt


def _jsonable(value):
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return repr(value)


def resolved_config(options: dict[str, Any], algo) -> dict[str, Any]:
    """`config.json`: the options, every field of the algorithm's config, and the
    versions that ran it."""
    import dataclasses

    return {
        "options": options,
        "algorithm_config": {
            f.name: _jsonable(getattr(algo.config, f.name))
            for f in dataclasses.fields(algo.config)
        },
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("memrl_eqx", "jax", "equinox", "optax")
        },
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _loggers(names: list[str], run: str, resume_step: int | None, config: dict):
    from .. import loggers as L

    out: list = [
        L.FileLogger(os.path.join(run, _run.METRICS), resume_step=resume_step),
        L.TensorBoardLogger(run, resume_step=resume_step),
    ]
    name = os.path.basename(os.path.normpath(run))
    for backend in names:
        if backend == "console":
            out.append(L.ConsoleLogger())
        elif backend == "dashboard":
            out.append(L.DashboardLogger(keys=("return", "length")))
        elif backend == "wandb":
            out.append(L.WandbLogger(name=name, dir=run, config=config["options"]))
        elif backend == "neptune":
            out.append(L.NeptuneLogger(name=name))
    return L.MultiLogger(out)


def _check_resumable(run: str, config: dict, given: dict[str, Any]) -> dict:
    """The checkpoint's metadata, after checking that the options given on the
    command line keep the run's identity (see `_run.checkpoint_metadata`)."""
    options = config["options"]
    for name, value in given.items():
        if name in _run.IDENTITY and value != options.get(name):
            flag = "--" + name.replace("_", "-")
            raise _run.RunError(
                f"{flag} {value}: the run {run!r} was trained with "
                f"{options.get(name)!r}, and a resumed run keeps its configuration "
                "(start a new run to change it)"
            )
    return _run.checkpoint_metadata(run, config)


def train(options: dict[str, Any], *, run: str, resume: bool, given: dict) -> int:
    """Train (or resume) the run in directory `run` with `options`."""
    import jax.numpy as jnp
    import jax.random as jr
    from tqdm import tqdm

    from .. import loggers as L
    from .._checkpoint import load_checkpoint, save_checkpoint

    if resume:
        config = _run.read_config(run)
        meta = _check_resumable(run, config, given)
        config["options"].update(
            {k: v for k, v in given.items() if k not in _run.IDENTITY}
        )
        options = config["options"]
    env, env_params = make_env(options["env"])
    net_key, init_key, eval_key = jr.split(jr.key(options["seed"]), 3)
    algo, per_update, warmup_steps = build_algorithm(options, env, env_params, net_key)
    # Equal chunks of whole updates, one compilation, logged between.
    updates_per_chunk = max(1, options["log_every"] // per_update)
    chunk_steps = updates_per_chunk * per_update
    chunks = math.ceil(options["total_steps"] / chunk_steps)
    checkpoint_chunks = max(1, options["checkpoint_every"] // chunk_steps)
    checkpoint = os.path.join(run, _run.CHECKPOINT)

    state = algo.init(init_key)
    if resume:
        try:
            state = load_checkpoint(checkpoint, state)
        except ValueError as error:
            raise _run.RunError(str(error)) from None
        done, resume_step = meta["chunks"], meta["step"]
        if done >= chunks:
            raise _run.RunError(
                f"the run {run!r} already trained its {options['total_steps']:,} "
                "steps; pass a larger --total-steps to continue it, or evaluate "
                f"it with `memrl-eqx evaluate {run}`"
            )
        print(f"resuming {run} at step {resume_step:,}", flush=True)
    else:
        config = resolved_config(options, algo)
        _run.write_config(run, config)
        if warmup_steps:
            state = algo.warmup(state, warmup_steps)
        done, resume_step = 0, None
        print(f"run directory: {run}", flush=True)
    _run.write_config(run, config)  # with the resumed run's new total_steps

    names = options.get("loggers", [])
    logger = _loggers(names, run, resume_step, config)
    bar = tqdm(
        total=chunks * chunk_steps,
        initial=done * chunk_steps,
        unit="step",
        unit_scale=True,
        disable=not sys.stderr.isatty() or "dashboard" in names,
        desc=f"{options['algorithm']}/{options['torso']}",
    )
    saved = completed = done
    last_step, latest = resume_step, None
    start = time.perf_counter()

    def save(chunks_done: int) -> None:
        nonlocal saved
        meta = {
            "options": {k: options[k] for k in _run.IDENTITY},
            "chunks": chunks_done,
            "step": last_step,
        }
        save_checkpoint(checkpoint, state, metadata=meta)
        saved = chunks_done

    with logger, _Interrupts() as interrupts:
        try:
            for chunk in range(done, chunks):
                new_state, metrics = algo.train(state, chunk_steps)
                rows = L.rows(metrics)
                with interrupts.critical():
                    for step, row in rows:
                        logger.log(row, step)
                        last_step = step
                        if math.isfinite(row.get("return", math.nan)):
                            latest = row["return"]
                    state, completed = new_state, chunk + 1
                    if completed % checkpoint_chunks == 0 or completed == chunks:
                        save(completed)
                bar.update(chunk_steps)
                bar.set_postfix(ret="n/a" if latest is None else f"{latest:.3g}")
        except KeyboardInterrupt:
            bar.close()
            with interrupts.critical():
                if saved < completed:
                    save(completed)
            print(
                f"interrupted; the run is checkpointed at step {last_step or 0:,}: "
                f"continue it with `memrl-eqx train --resume {run}`",
                file=sys.stderr,
            )
            return 130
        bar.close()
        elapsed = time.perf_counter() - start
        evaluation = algo.evaluate(state, eval_key, options["eval_episodes"])
        returns = evaluation["return"]
        logger.log({"eval/return": returns}, last_step)
        eval_return = float(jnp.mean(returns))
        hparams = {k: v for k, v in options.items() if k != "loggers"}
        logger.log_hparams(hparams, {"eval/return": eval_return})
    _run.write_evaluation(
        run,
        {
            "step": last_step,
            "episodes": options["eval_episodes"],
            "return_mean": eval_return,
            "returns": [float(r) for r in returns],
        },
    )
    title = f"{options['algorithm']}/{options['torso']} on {options['env']}"
    plot_curves(
        os.path.join(run, _run.CURVE),
        {"training episodes (mean per update)": [_run.read_metrics(run)]},
        title=title,
        reference=eval_return,
    )
    steps = (chunks - done) * chunk_steps
    print(
        f"trained {steps:,} steps in {elapsed:.1f}s ({steps / elapsed:,.0f} steps/s, "
        f"compilation included); final evaluation return over "
        f"{options['eval_episodes']} episodes: {eval_return:.3f}"
    )
    return 0
