"""`memrl-eqx train`: a new run, or `--resume RUN_DIR` to continue one.

A run trains all its seeds at once (one compiled, vmapped call), in chunks of
whole updates, `log_every` steps each (the last may be shorter): after each chunk
its rows are logged (one per update and seed to `metrics.jsonl`, their mean over
seeds to the other loggers), every `eval_every` steps the greedy policies are
evaluated, and every `checkpoint_every` steps (and at the end) the whole training
state is checkpointed with the number of updates done. A resumed run loads the
checkpoint, drops the log rows written after it, and runs the remaining chunks,
so an interrupted and resumed run logs and computes exactly what an
uninterrupted one does.
"""

import contextlib
import datetime
import importlib.metadata
import math
import os
import shlex
import signal
import sys
import time
from typing import Any

from . import _run
from ._build import (
    build_seeds,
    evaluate_states,
    init_states,
    plan,
    Seeds,
    train_states,
)
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


def versions() -> dict[str, str]:
    names = ("memrl_eqx", "jax", "equinox", "optax")
    return {name: importlib.metadata.version(name) for name in names}


def config_file(resolved: dict[str, Any]) -> dict[str, Any]:
    """`config.json`: the resolved options, config and optimizer (all that a run
    is made of: `memrl-eqx train --config config.json` trains it again), and the
    versions that ran it."""
    return {
        **resolved,
        "versions": versions(),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _loggers(names: list[str], run: str, resume_step: int | None, options: dict):
    """The file logger (per seed) and the others (mean over seeds)."""
    from .. import loggers as L

    file = L.FileLogger(os.path.join(run, _run.METRICS), resume_step=resume_step)
    out: list = [L.TensorBoardLogger(run, resume_step=resume_step)]
    name = os.path.basename(os.path.normpath(run))
    for backend in names:
        if backend == "console":
            out.append(L.ConsoleLogger())
        elif backend == "dashboard":
            out.append(L.DashboardLogger(keys=("return", "length")))
        elif backend == "wandb":
            out.append(L.WandbLogger(name=name, dir=run, config=options))
        elif backend == "neptune":
            out.append(L.NeptuneLogger(name=name))
    return file, L.MultiLogger(out)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class _Progress:
    """A tqdm bar on a terminal; otherwise one line per chunk on stderr."""

    def __init__(self, total: int, initial: int, desc: str, bar: bool):
        from tqdm import tqdm

        self.total, self.desc, self.start, self.initial = total, desc, None, initial
        self.bar = (
            tqdm(total=total, initial=initial, unit="step", unit_scale=True, desc=desc)
            if bar
            else None
        )

    def begin(self) -> None:
        self.start = time.perf_counter()

    def update(self, step: int, steps: int, latest: float | None) -> None:
        ret = "n/a" if latest is None else f"{latest:.3g}"
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix(ret=ret)
            return
        elapsed = time.perf_counter() - self.start
        rate = (step - self.initial) / elapsed if elapsed > 0 else math.nan
        eta = _duration((self.total - step) / rate) if rate > 0 else "n/a"
        print(
            f"{self.desc}: step {step:,}/{self.total:,} "
            f"({100 * step / self.total:.0f}%), {rate:,.0f} steps/s, "
            f"return {ret}, ETA {eta}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _per_seed(metrics: dict, seeds: list[int]) -> list[list[tuple[int, dict]]]:
    """The rows of every seed (metrics of shape `(seeds, updates)`)."""
    from .. import loggers as L

    return [L.rows({k: v[i] for k, v in metrics.items()}) for i in range(len(seeds))]


def _mean_rows(per_seed: list[list[tuple[int, dict]]]) -> list[tuple[int, dict]]:
    """The mean over seeds of each update's row (NaN-aware: seeds in which no
    episode ended are left out of the mean)."""
    import numpy as np

    out = []
    for updates in zip(*per_seed):
        step, first = updates[0]
        row = {}
        for key in first:
            values = np.asarray([r[key] for _, r in updates], dtype=float)
            finite = values[np.isfinite(values)]
            row[key] = float(finite.mean()) if finite.size else math.nan
        out.append((step, row))
    return out


def train(
    resolved: dict[str, Any],
    *,
    run: str,
    resume: bool,
    command: list[str],
    seeds: Seeds | None = None,
) -> int:
    """Train (or resume) the run in directory `run`. `command` is the command
    line that started it, repeated in the message of an early interrupt;
    `seeds`, the run's algorithms if already built."""
    import jax
    import jax.random as jr
    import numpy as np

    from .._checkpoint import load_checkpoint, save_checkpoint

    options = resolved["options"]
    steps = plan(resolved)
    per, total = steps["steps_per_update"], steps["total_updates"]
    chunk_updates = steps["chunk_updates"]
    chunk_steps = chunk_updates * per
    checkpoint_updates = max(1, options["checkpoint_every"] // chunk_steps)
    checkpoint_updates *= chunk_updates
    eval_updates = None
    if options["eval_every"]:
        eval_updates = max(1, options["eval_every"] // chunk_steps) * chunk_updates
    checkpoint = os.path.join(run, _run.CHECKPOINT)
    episodes = options["eval_episodes"]

    meta = _run.checkpoint_metadata(run, resolved) if resume else None
    if meta is not None and meta["updates"] >= total:
        raise _run.RunError(
            f"the run {run!r} already trained its {options['total_steps']:,} "
            "steps; pass a larger --total-steps to continue it, or evaluate "
            f"it with `memrl-eqx evaluate {run}`"
        )
    done = meta["updates"] if meta else 0
    last_step = meta["step"] if meta else None
    names = options["loggers"]
    file_logger, logger = _loggers(names, run, last_step, options)
    label = f"{options['algorithm']}/{options['torso']}"
    progress = _Progress(
        total * per,
        done * per,
        label,
        bar=sys.stderr.isatty() and "dashboard" not in names,
    )
    start_updates, saved, latest = done, done if meta else None, None
    state = None

    def identity_meta() -> dict:
        return {"identity": _run.identity(resolved), "updates": done, "step": last_step}

    def log(rows_per_seed, eval_returns=None) -> None:
        nonlocal last_step, latest
        for seed, rows in zip(seeds.seeds, rows_per_seed):
            for step, row in rows:
                file_logger.log({**row, "seed": seed}, step)
        for step, row in _mean_rows(rows_per_seed):
            logger.log(row, step)
            last_step = step
            if math.isfinite(row.get("return", math.nan)):
                latest = row["return"]
        if eval_returns is not None:
            means = np.asarray(eval_returns).mean(axis=1)
            for seed, value in zip(seeds.seeds, means):
                file_logger.log({"eval/return": float(value), "seed": seed}, last_step)
            # Every seed's episodes: a histogram and their mean.
            flat = np.asarray(eval_returns).reshape(-1)
            logger.log({"eval/return": flat}, last_step)

    fold = jax.vmap(jr.fold_in, in_axes=(0, None))
    with file_logger, logger, _Interrupts() as interrupts:
        try:
            # Inside the try: an interrupt while the networks are built (after
            # config.json is written) is reported like any other.
            if resume:
                print(f"resuming {run} at step {meta['step']:,}", flush=True)
            else:
                _run.write_config(run, config_file(resolved))
                print(f"run directory: {run}", flush=True)
            seeds = build_seeds(resolved) if seeds is None else seeds
            if meta is None:
                state = init_states(seeds, steps["warmup_steps"])
            else:
                like = init_states(seeds, 0)
                try:
                    state = load_checkpoint(checkpoint, like)
                except ValueError as error:
                    raise _run.RunError(str(error)) from None
            progress.begin()
            while done < total:
                n = min(chunk_updates, total - done)
                new_state, metrics = train_states(seeds, state, n * per)
                after = done + n
                evaluation = None
                if eval_updates and after // eval_updates > done // eval_updates:
                    if after < total:  # the final evaluation comes last
                        keys = fold(seeds.eval_keys, after)
                        evaluation = evaluate_states(seeds, new_state, keys, episodes)
                metrics = jax.device_get(metrics)
                with interrupts.critical():
                    log(_per_seed(metrics, seeds.seeds), evaluation)
                    before, state, done = done, new_state, after
                    if after // checkpoint_updates > before // checkpoint_updates or (
                        after == total
                    ):
                        save_checkpoint(checkpoint, state, metadata=identity_meta())
                        saved = done
                progress.update(done * per, n * per, latest)
        except KeyboardInterrupt:
            progress.close()
            with interrupts.critical():
                if done > (saved or 0):  # a logged chunk not checkpointed yet
                    save_checkpoint(checkpoint, state, metadata=identity_meta())
                    saved = done
            if saved is None:
                again = shlex.join(["memrl-eqx", *command])
                if "--overwrite" not in command:
                    again += " --overwrite"
                print(
                    "interrupted before the first checkpoint: nothing was saved; "
                    f"start the run again with `{again}`",
                    file=sys.stderr,
                )
            else:
                print(
                    f"interrupted; the run is checkpointed at step {last_step:,}: "
                    f"continue it with `memrl-eqx train --resume {run}`",
                    file=sys.stderr,
                )
            return 130
        progress.close()
        elapsed = time.perf_counter() - progress.start
        returns = np.asarray(evaluate_states(seeds, state, seeds.eval_keys, episodes))
        log([[] for _ in seeds.seeds], returns)
        per_seed = returns.mean(axis=1)
        eval_return = float(per_seed.mean())
        hparams = {k: v for k, v in options.items() if k != "loggers"}
        hparams = {k: v for k, v in hparams.items() if v is not None}
        logger.log_hparams(hparams, {"eval/return": eval_return})
    _run.write_evaluation(
        run,
        {
            "step": last_step,
            "episodes": episodes,
            "seeds": seeds.seeds,
            "return_mean": eval_return,
            "return_mean_per_seed": [float(r) for r in per_seed],
            "returns": [[float(r) for r in seed] for seed in returns],
        },
    )
    _plot(run, options, eval_return)
    trained = (total - start_updates) * per
    rounded = ""
    if not resume and total * per != options["total_steps"]:
        rounded = (
            f"; --total-steps {options['total_steps']:,} rounded up to whole "
            f"updates of {per:,}"
        )
    warmup = ""
    if not resume and steps["warmup_steps"]:
        warmup = f", after {steps['warmup_steps']:,} warm-up steps of random actions"
    many = len(seeds.seeds) > 1
    spread = (
        f" (mean of {len(seeds.seeds)} seeds: "
        + ", ".join(f"{r:.3f}" for r in per_seed)
        + ")"
        if many
        else ""
    )
    rate = trained * len(seeds.seeds) / elapsed
    print(
        f"trained {trained:,} steps ({total - start_updates:,} updates{rounded})"
        f"{warmup}{' per seed' if many else ''} in {elapsed:.1f}s "
        f"({rate:,.0f} steps/s{' over all seeds' if many else ''}, compilation "
        f"included); final evaluation return over {episodes} episodes: "
        f"{eval_return:.3f}{spread}"
    )
    return 0


def _plot(run: str, options: dict, eval_return: float) -> None:
    """The run's learning curve: training returns (mean and spread over seeds)
    and the periodic evaluations."""
    groups = {
        "training episodes (mean per update)": list(_run.read_curves(run).values())
    }
    evaluations = [
        curve
        for curve in _run.read_curves(run, "eval/return").values()
        if len(curve[0]) > 1
    ]
    if evaluations:
        groups["greedy evaluation"] = evaluations
    if not groups["training episodes (mean per update)"]:
        del groups["training episodes (mean per update)"]
    title = f"{options['algorithm']}/{options['torso']} on {options['env']}"
    plot_curves(
        os.path.join(run, _run.CURVE), groups, title=title, reference=eval_return
    )
