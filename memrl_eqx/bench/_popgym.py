"""`popgym`: the POPGym benchmark, torsos x tasks x seeds, into a bench directory.

A bench directory holds `bench.json` (the settings every result in it was
obtained with), `results.jsonl` (one record per torso, task and seed, rewritten
atomically as each (torso, task) cell finishes), `results.md` and `plots/` (drawn
from the records), and `cells/TORSO-TASK/state.ckpt` (the training state of a
cell, checkpointed after every chunk of training).
"""

import dataclasses
import datetime
import functools
import importlib.metadata
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Key, PRNGKeyArray

from .._agents import actor_critic, TORSOS
from .._checkpoint import load_checkpoint, save_checkpoint
from .._stack import stack
from ..algorithms import PPO, PPOConfig
from ..cli._options import BENCH_CONFIG, BENCH_DEFAULTS, BENCH_OPTIMIZER
from ..nn import AbstractSequenceModel
from ._mmer import mmer


TorsoSpec = str | tuple[str, Callable[[PRNGKeyArray], AbstractSequenceModel]]

LEVELS = ("Easy", "Medium", "Hard")
RESULTS = "results.jsonl"
SETTINGS = "bench.json"
CELLS = "cells"
PLOTS = "plots"
REPORT = "results.md"
CHECKPOINT = "state.ckpt"
MAX_CHUNKS = 20  # checkpoints per cell: an interruption loses at most 1/20 of it
_IDENTITY = ("benchmark", "seeds", "total_steps", "features", "eval_episodes")
_IDENTITY += ("config", "optimizer")
_NAME = re.compile(r"^[A-Za-z0-9_.+]+$")


class BenchError(ValueError):
    """A bench directory that cannot be used as asked (other settings, not a
    bench directory): the message names the directory and the option."""


# ---------------------------------------------------------------- arguments
def _popgym_tasks() -> list[str]:
    from ..envs.popgym import _registry

    return [name for name in _registry if name.endswith(LEVELS)]


def level_of(task: str) -> str:
    """`"Easy"`, `"Medium"` or `"Hard"`: the level a task name ends with."""
    return next(level for level in LEVELS if task.endswith(level))


def resolve_tasks(tasks: Sequence[str] | str) -> list[str]:
    """Task names (e.g. `"RepeatFirstEasy"`) from names and levels (`"easy"`,
    `"medium"`, `"hard"`, `"all"`; a string may list several, comma-separated),
    in the order given, without repeats."""
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    known = _popgym_tasks()
    out: list[str] = []
    for task in tasks:
        if not isinstance(task, str):
            raise TypeError(
                f"popgym: `tasks` must hold strings; got {type(task).__name__}."
            )
        level = task.lower()
        if level == "all":
            names = known
        elif level in ("easy", "medium", "hard"):
            names = [t for t in known if t.endswith(level.capitalize())]
        elif task in known:
            names = [task]
        else:
            raise ValueError(
                f"popgym: unknown task {task!r} in `tasks`; give a level ('easy', "
                "'medium', 'hard', 'all') or task names with their level: "
                f"{', '.join(known)}."
            )
        out += [t for t in names if t not in out]
    if not out:
        raise ValueError("popgym: `tasks` is empty; name at least one task.")
    return out


def _resolve_torsos(torsos: Sequence[TorsoSpec] | str) -> list[tuple[str, Any]]:
    if isinstance(torsos, str):
        torsos = [t.strip() for t in torsos.split(",") if t.strip()]
    out: list[tuple[str, Any]] = []
    for torso in torsos:
        if isinstance(torso, str):
            if torso not in TORSOS:
                raise ValueError(
                    f"popgym: unknown torso {torso!r} in `torsos`; choose among "
                    f"{', '.join(sorted(TORSOS))}, or give (name, factory) with "
                    "factory(key) building a sequence model from `features` to "
                    "`features`."
                )
            name, factory = torso, None
        elif (
            isinstance(torso, tuple)
            and len(torso) == 2
            and isinstance(torso[0], str)
            and callable(torso[1])
        ):
            name, factory = torso
        else:
            raise TypeError(
                "popgym: each entry of `torsos` must be a torso name or a pair "
                f"(name, factory); got {torso!r}."
            )
        if not _NAME.match(name):
            raise ValueError(
                f"popgym: the torso name {name!r} must consist of letters, digits "
                "and '_', '.', '+' (it names a directory)."
            )
        if any(name == n for n, _ in out):
            raise ValueError(f"popgym: the torso {name!r} is given twice.")
        out.append((name, factory))
    if not out:
        raise ValueError("popgym: `torsos` is empty; name at least one torso.")
    return out


# ---------------------------------------------------------------- records
def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, jax.Array | np.ndarray):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return repr(value)


def _config_record(config: PPOConfig) -> dict[str, Any]:
    record = {"algorithm": "ppo"}
    for field in dataclasses.fields(config):
        record[field.name] = _jsonable(getattr(config, field.name))
    return record


def _versions() -> dict[str, str]:
    return {
        name: importlib.metadata.version(name)
        for name in ("memrl_eqx", "jax", "equinox", "optax")
    }


@functools.cache
def _make(task: str):
    # One environment object per task and process (it is a static part of the
    # compiled training, compared by identity).
    from ..envs import make

    return make(f"popgym::{task}")


def read_results(out: str | Path) -> list[dict]:
    """The records of `out/results.jsonl` (empty if there is none)."""
    path = Path(out) / RESULTS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append_results(out: Path, records: list[dict]) -> None:
    lines = [json.dumps(r) for r in read_results(out) + records]
    _write_atomic(out / RESULTS, "".join(line + "\n" for line in lines))


# ---------------------------------------------------------------- directory
def _prepare(out: Path, settings: dict, overwrite: bool, log) -> None:
    """Make `out` a bench directory of `settings`: refuse one of other settings
    (or a non-empty directory that is not a bench directory) unless
    `overwrite`, which removes the bench files (and only those)."""
    settings_path = out / SETTINGS
    if out.exists() and not out.is_dir():
        raise BenchError(f"popgym: the bench directory {str(out)!r} is a file.")
    if out.is_dir() and any(out.iterdir()):
        if settings_path.exists():
            try:
                saved = json.loads(settings_path.read_text())
            except json.JSONDecodeError:
                saved = {}
            differ = [k for k in _IDENTITY if saved.get(k) != settings[k]]
        else:
            saved, differ = {}, None
        if differ is None or differ:
            if not overwrite:
                if differ is None:
                    why = "is not empty and is not a bench directory (no bench.json)"
                else:
                    why = (
                        "holds results of other settings ("
                        + "; ".join(
                            f"{k}: {json.dumps(saved.get(k))} there, "
                            f"{json.dumps(settings[k])} now"
                            for k in differ
                        )
                        + ")"
                    )
                raise BenchError(
                    f"popgym: the bench directory {str(out)!r} {why}; pass "
                    "overwrite=True (the command line's --overwrite) to replace "
                    "its results, or choose another directory."
                )
        if overwrite:
            log(f"overwrite: removing the results in {out}")
            for name in (RESULTS, SETTINGS, REPORT):
                (out / name).unlink(missing_ok=True)
            for name in (CELLS, PLOTS):
                shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    record = dict(settings)
    record["versions"] = _versions()
    if settings_path.exists():
        record["created"] = json.loads(settings_path.read_text()).get("created")
    else:
        record["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    _write_atomic(settings_path, json.dumps(record, indent=2) + "\n")


# ---------------------------------------------------------------- training
def _build(env, params, name, factory, features, config, optimizer, key) -> PPO:
    # A factory goes straight to `actor_critic`, which checks what it returns.
    torso = name if factory is None else factory
    try:
        actor, critic = actor_critic(
            env, params, torso=torso, features=features, key=key
        )
    except ValueError as error:
        raise TypeError(
            f"popgym: the factory of the torso {name!r} must return a "
            "memrl_eqx.nn.AbstractSequenceModel from `features` to `features`: "
            f"{error}"
        ) from None
    return PPO(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optimizer,
    )


# Module-level jitted functions: cells of one setting in one process (resumed
# cells, a re-run) reuse their compilations.
@eqx.filter_jit
def _init(algos: PPO, keys: Key[Array, " seeds"]):
    return eqx.filter_vmap(lambda a, k: a.init(k))(algos, keys)


@eqx.filter_jit
def _train(algo: PPO, states, num_steps: int):
    run = lambda s: algo.train(s, num_steps)
    state, metrics = eqx.filter_vmap(run)(states)
    keep = ("return", "loss", "step")
    return state, {k: metrics[k] for k in keep}


@eqx.filter_jit
def _evaluate(algo: PPO, states, keys: Key[Array, " seeds"], num_episodes: int):
    run = lambda s, k: jnp.mean(algo.evaluate(s, k, num_episodes)["return"])
    return eqx.filter_vmap(run)(states, keys)


def _none_if_nan(x: Any) -> float | None:
    return float(x) if math.isfinite(x) else None


def _run_cell(
    out: Path,
    name: str,
    factory,
    task: str,
    settings: dict,
    config: PPOConfig,
    optimizer: optax.GradientTransformation,
    log,
) -> list[dict]:
    seeds, features = settings["seeds"], settings["features"]
    label = f"{name} {task}"
    env, params = _make(task)
    seed_keys = [jr.key(seed) for seed in range(seeds)]
    algos = [
        _build(
            env, params, name, factory, features, config, optimizer, jr.fold_in(k, 0)
        )
        for k in seed_keys
    ]
    algo = algos[0]  # training reads only the states' networks
    per_update = config.batch_size
    updates = max(1, math.ceil(settings["total_steps"] / per_update))
    chunk_updates = math.ceil(updates / min(MAX_CHUNKS, updates))
    num_chunks = math.ceil(updates / chunk_updates)
    chunk_steps = chunk_updates * per_update

    cell = out / CELLS / f"{name}-{task}"
    cell.mkdir(parents=True, exist_ok=True)
    checkpoint = cell / CHECKPOINT
    start = time.perf_counter()
    states = _init(stack(algos), jnp.stack([jr.fold_in(k, 1) for k in seed_keys]))
    done, steps, returns, seconds = 0, [], [[] for _ in range(seeds)], 0.0
    if checkpoint.exists():
        try:
            from .._checkpoint import read_checkpoint_metadata

            meta = read_checkpoint_metadata(checkpoint)
            if meta.get("settings") != settings or meta.get("chunks", 0) > num_chunks:
                raise ValueError("it holds a state of other settings")
            states = load_checkpoint(checkpoint, states)
            done, steps = meta["chunks"], meta["steps"]
            returns, seconds = meta["returns"], meta["seconds"]
            log(
                f"resume {label} from its checkpoint at chunk {done}/{num_chunks} "
                f"(step {done * chunk_steps:,})"
            )
        except ValueError as error:
            log(f"{label}: its checkpoint is unusable ({error}); training afresh")
            done, steps, returns, seconds = 0, [], [[] for _ in range(seeds)], 0.0
    if not done:
        log(
            f"train {label}: {seeds} seeds at once, {num_chunks} chunks of up to "
            f"{chunk_steps:,} steps ({updates * per_update:,} steps per seed)"
        )

    failure = None
    for chunk in range(done, num_chunks):
        # The last chunk may be shorter: exactly `updates` updates are trained.
        n = min(chunk_updates, updates - chunk * chunk_updates)
        states, metrics = _train(algo, states, n * per_update)
        metrics = jax.tree.map(np.asarray, metrics)
        loss = metrics["loss"]  # (seeds, updates)
        bad = ~np.isfinite(loss)
        steps += [int(s) for s in metrics["step"][0]]
        for seed in range(seeds):
            returns[seed] += [_none_if_nan(r) for r in metrics["return"][seed]]
        if bad.any():
            first = int(np.argmax(bad.any(axis=0)))
            failed = [s for s in range(seeds) if bad[s].any()]
            failure = (
                f"NaN loss at step {int(metrics['step'][0][first]):,} "
                f"(seed{'s' if len(failed) > 1 else ''} "
                f"{', '.join(map(str, failed))})"
            )
            log(
                f"FAILED {label}: {failure}; this cell stops and is recorded as "
                "failed, the other cells go on"
            )
            break
        seconds_now = seconds + time.perf_counter() - start
        save_checkpoint(
            checkpoint,
            states,
            metadata={
                "settings": settings,
                "chunks": chunk + 1,
                "steps": steps,
                "returns": returns,
                "seconds": seconds_now,
            },
        )
        recent = [r for seed in returns for r in seed[-chunk_updates:] if r is not None]
        shown = f"{np.mean(recent):.3f}" if recent else "n/a"
        log(
            f"  {label}: chunk {chunk + 1}/{num_chunks}, step {steps[-1]:,}, "
            f"mean return {shown}"
        )
    if failure is None:
        eval_keys = jnp.stack([jr.fold_in(k, 2) for k in seed_keys])
        evaluation = np.asarray(
            _evaluate(algo, states, eval_keys, settings["eval_episodes"])
        )
    seconds += time.perf_counter() - start

    curve = np.array([[np.nan if r is None else r for r in s] for s in returns])
    scores = mmer(curve) if curve.size else np.full(seeds, np.nan)
    finished = datetime.datetime.now().isoformat(timespec="seconds")
    records = []
    for seed in range(seeds):
        records.append(
            {
                "benchmark": "popgym",
                "torso": name,
                "task": task,
                "level": level_of(task),
                "seed": seed,
                "status": "ok" if failure is None else "failed",
                "error": failure,
                "mmer": _none_if_nan(scores[seed]) if failure is None else None,
                "eval_return": (
                    _none_if_nan(evaluation[seed]) if failure is None else None
                ),
                "eval_episodes": settings["eval_episodes"],
                "total_steps": settings["total_steps"],
                "steps_trained": steps[-1] if steps else 0,
                "seconds": round(seconds, 2),
                "features": features,
                "config": settings["config"],
                "optimizer": settings["optimizer"],
                "versions": _versions(),
                "finished": finished,
                "steps": steps,
                "returns": returns[seed],
            }
        )
    if failure is None:
        shown = lambda xs: f"{np.nanmean(xs):.3f} ± {np.nanstd(xs):.3f}"
        log(
            f"done {label}: MMER {shown(scores)}, evaluation return "
            f"{shown(evaluation)} over {seeds} seeds ({seconds:.0f} s)"
        )
    return records


def popgym(
    out: str | os.PathLike,
    *,
    torsos: Sequence[TorsoSpec] | str = BENCH_DEFAULTS["torsos"],
    tasks: Sequence[str] | str = BENCH_DEFAULTS["tasks"],
    seeds: int = BENCH_DEFAULTS["seeds"],
    total_steps: int = BENCH_DEFAULTS["total_steps"],
    config: PPOConfig | None = None,
    optimizer: optax.GradientTransformation | None = None,
    optimizer_record: dict | None = None,
    features: int = BENCH_DEFAULTS["features"],
    eval_episodes: int = BENCH_DEFAULTS["eval_episodes"],
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run the POPGym benchmark (Morad et al., ICLR 2023) with PPO: every torso
    on every task, `seeds` seeds each, scored by MMER (see
    [`memrl_eqx.bench.mmer`][]) and by a final greedy evaluation, into the bench
    directory `out`.

    Each (torso, task) cell trains all its seeds in one compiled, vmapped call:
    seed `s` builds its networks with `memrl_eqx.actor_critic` from
    `jax.random.key(s)`. Training runs in up to 20 equal chunks of whole updates
    (the budget is rounded up to them); after each chunk the cell's state is
    checkpointed in `out/cells/TORSO-TASK/state.ckpt`.

    Written into `out`:

    - `results.jsonl`: one JSON record per torso, task and seed with `torso`,
      `task`, `level`, `seed`, `status` (`"ok"` or `"failed"`), `error`, `mmer`,
      `eval_return` (mean greedy return over `eval_episodes` fresh episodes),
      `total_steps` (the budget asked) and `steps_trained`, `seconds` (the
      cell's wall time, all seeds at once, compilation included), `features`,
      `config` and `optimizer` (records of the settings), `versions`
      (memrl_eqx, jax, equinox, optax), `finished`, and the learning curve:
      `steps` and `returns` (the mean episodic return of every update, null
      where no episode ended). A cell's records are written together, once it
      finishes.
    - `bench.json`: the settings; `results.md`: a table per level (torso columns,
      MMER mean ± sd over seeds, POPGym's published PPO-GRU MMER and our GRU's
      difference to it); `plots/`: per-level MMER per task with the seeds'
      spread, an aggregate of normalised scores (IQM and mean with stratified
      bootstrap confidence intervals, by `rliable`: the `bench` extra), and a
      learning curve per task.

    Resumable and safe: a re-run skips the cells `results.jsonl` holds and
    continues an unfinished cell from its last checkpoint, so an interruption
    loses at most one chunk; a directory holding results of other settings
    (`seeds`, `total_steps`, `features`, `eval_episodes`, `config`, optimiser
    record) is refused unless `overwrite`; a non-finite loss stops its cell,
    which is recorded as failed, and the other cells go on.

    **Arguments:**

    - `out`: the bench directory (created if missing).
    - `torsos`: torso names of `memrl_eqx.TORSOS`, or `(name, factory)` pairs
      where `factory(key)` returns a sequence model from `features` to
      `features` per step (the actor and the critic each get one); a string may
      list names comma-separated. Default `"gru,mlp"`.
    - `tasks`: POPGym task names with their level (e.g. `"RepeatFirstEasy"`) or
      levels `"easy"`, `"medium"`, `"hard"`, `"all"`; a string may list
      several, comma-separated. Default `"easy"`.
    - `seeds`: seeds per cell, trained at once. Default 3.
    - `total_steps`: environment steps per seed and cell. Default 2,000,000.
    - `config`: the `PPOConfig`; default `PPOConfig(gae_lambda=0.8)`, the
      preset `examples/configs/ppo_popgym.toml` (with the defaults' λ of 0.95 a
      GRU stays at chance on RepeatFirstEasy; the preset's comments say why).
    - `optimizer`: an optax transformation; default clipping the global norm at
      0.5, then Adam (learning rate 1e-3, eps 1e-5), the preset's.
    - `optimizer_record`: a JSON-serialisable description of `optimizer`,
      written to the records and compared on a re-run (give one with a custom
      optimiser, or runs of different optimisers cannot be told apart).
    - `features`: the width of the embedding, torsos and heads. Default 128.
    - `eval_episodes`: episodes of the final greedy evaluation per seed.
      Default 32.
    - `overwrite`: replace the results of a directory of other settings (only
      the bench files are removed). Default False.
    - `log`: called with each progress line (default `print`).

    **Returns:** every record of `results.jsonl`, those of earlier runs included.

    **Raises:** `ValueError` (a `BenchError`) naming the directory for a
    directory of other settings without `overwrite`; `ValueError`/`TypeError`
    for an unknown torso or task or an invalid setting.

    **Example:**

    ```python
    import tempfile

    from memrl_eqx.algorithms import PPOConfig
    from memrl_eqx.bench import popgym

    with tempfile.TemporaryDirectory() as out:
        config = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2)
        records = popgym(
            out,
            torsos=["mlp"],
            tasks=["RepeatFirstEasy"],
            seeds=1,
            total_steps=128,
            config=config,
            features=8,
            eval_episodes=2,
            log=lambda line: None,
        )
    assert [(r["torso"], r["task"], r["seed"]) for r in records] == [
        ("mlp", "RepeatFirstEasy", 0)
    ]
    ```
    """
    for arg, value in (
        ("seeds", seeds),
        ("total_steps", total_steps),
        ("features", features),
        ("eval_episodes", eval_episodes),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"popgym: `{arg}` must be a positive int; got {value!r}.")
    if config is None:
        config = PPOConfig(**BENCH_CONFIG)
    if not isinstance(config, PPOConfig):
        raise TypeError(
            f"popgym: `config` must be a PPOConfig; got {type(config).__name__}."
        )
    if optimizer is None:
        from ..cli._build import make_optimizer

        optimizer = make_optimizer(BENCH_OPTIMIZER)
        if optimizer_record is None:
            optimizer_record = dict(BENCH_OPTIMIZER)
    elif optimizer_record is None:
        optimizer_record = {"kind": "custom, not described (pass optimizer_record)"}
    if not isinstance(optimizer_record, dict):
        raise TypeError(
            "popgym: `optimizer_record` must be a dict (a JSON-serialisable "
            f"description of the optimiser); got {type(optimizer_record).__name__}."
        )
    try:
        optimizer_record = json.loads(json.dumps(optimizer_record))
    except TypeError as error:
        raise TypeError(
            f"popgym: `optimizer_record` must be JSON-serialisable: {error}"
        ) from None
    torso_specs = _resolve_torsos(torsos)
    task_names = resolve_tasks(tasks)
    out = Path(out)
    settings = {
        "benchmark": "popgym",
        "seeds": seeds,
        "total_steps": total_steps,
        "features": features,
        "eval_episodes": eval_episodes,
        "config": _config_record(config),
        "optimizer": optimizer_record,
    }
    _prepare(out, settings, overwrite, log)
    finished = {(r["torso"], r["task"]) for r in read_results(out)}
    cells = [(t, task) for t in torso_specs for task in task_names]
    log(
        f"popgym bench in {out}: {len(torso_specs)} torsos x {len(task_names)} "
        f"tasks, {seeds} seeds, {total_steps:,} steps each"
    )
    from ._report import write_report

    ran = False
    for (name, factory), task in cells:
        if (name, task) in finished:
            log(f"skip {name} {task}: finished (in {RESULTS})")
            continue
        records = _run_cell(out, name, factory, task, settings, config, optimizer, log)
        _append_results(out, records)
        # The report after every cell: a long bench has its tables as it goes.
        write_report(out, read_results(out), log=log)
        ran = True
    records = read_results(out)
    if not ran:
        write_report(out, records, log=log)
    return records
