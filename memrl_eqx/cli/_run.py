"""A run directory: what `memrl-eqx train` writes, and reads back to resume.

```
RUN_DIR/
  config.json           the resolved configuration (options, config, optimizer)
  metrics.jsonl         one row per update and seed (`step`, `seed`, `return`, ...)
  events.out.tfevents.* TensorBoard events of the same rows
  checkpoint.eqx        the whole training state at the latest checkpoint
  evaluation.json       the final evaluation's returns, per seed and their mean
  learning_curve.png    the training curve and the final evaluation
```
"""

import json
import math
import os
import shutil
from typing import Any

from ._options import IDENTITY


CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.eqx"
EVALUATION = "evaluation.json"
CURVE = "learning_curve.png"


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """What defines a run (and its checkpoint): the identity options, the
    algorithm's config and the optimiser."""
    options = config["options"]
    return {
        "options": {name: options.get(name) for name in IDENTITY},
        "config": config.get("config"),
        "optimizer": config.get("optimizer"),
    }


class RunError(Exception):
    """A run directory or its files cannot be used; the message says why."""


def _write_json(path: str, data: Any) -> None:
    """Write `data` as JSON to `path` atomically (a temporary file, then rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def create_run(path: str, *, overwrite: bool) -> str:
    """Create the run directory `path`. An existing non-empty directory is an
    error unless `overwrite`, and even then only if it is a run directory (holds
    a `config.json`), so `--overwrite` never deletes anything else."""
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        if not overwrite:
            raise RunError(
                f"run directory {path!r} already exists; pass --overwrite to "
                f"replace it, or `--resume {path}` to continue it"
            )
        if not os.path.isfile(os.path.join(path, CONFIG)):
            raise RunError(
                f"--overwrite: {path!r} is not a run directory (no {CONFIG}); "
                "refusing to delete it"
            )
        shutil.rmtree(path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as error:
        raise RunError(
            f"cannot create the run directory {path!r}: {error.strerror or error}"
        ) from None
    return path


def write_config(run: str, config: dict[str, Any]) -> None:
    _write_json(os.path.join(run, CONFIG), config)


def read_config(run: str) -> dict[str, Any]:
    """The `config.json` of the run directory `run`, checked to be one."""
    path = os.path.join(run, CONFIG)
    if not os.path.isdir(run):
        raise RunError(f"run directory {run!r} does not exist")
    if not os.path.isfile(path):
        raise RunError(f"{run!r} is not a run directory: it has no {CONFIG}")
    try:
        with open(path) as f:
            config = json.load(f)
        assert isinstance(config, dict) and isinstance(config.get("options"), dict)
    except Exception:
        raise RunError(
            f"{path!r} is not a valid run configuration (expected a JSON object "
            "with an 'options' object, as `memrl-eqx train` writes)"
        ) from None
    return config


def read_resolved(run: str) -> dict[str, Any]:
    """The resolved configuration (`options`, `config`, `optimizer`) of a run."""
    config = read_config(run)
    if not isinstance(config.get("config"), dict) or not isinstance(
        config.get("optimizer"), dict
    ):
        raise RunError(
            f"{os.path.join(run, CONFIG)!r} has no 'config' and 'optimizer' "
            "tables (written by an older memrl-eqx?); train the run again"
        )
    return {k: config[k] for k in ("options", "config", "optimizer")}


def write_evaluation(run: str, evaluation: dict[str, Any]) -> None:
    _write_json(os.path.join(run, EVALUATION), evaluation)


def read_curves(
    run: str, key: str = "return"
) -> dict[int | None, tuple[list[int], list[float]]]:
    """The steps and values of `key` in the run's `metrics.jsonl`, per seed
    (`None` for rows without one); rows where it is missing or not finite (no
    episode ended) are left out."""
    path = os.path.join(run, METRICS)
    if not os.path.isfile(path):
        raise RunError(f"{run!r} has no {METRICS}: not a run directory?")
    curves: dict[int | None, tuple[list[int], list[float]]] = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise RunError(f"{path}:{number}: not a JSON row") from None
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                seed = row.get("seed")  # written as a float, like every metric
                seed = None if seed is None else int(seed)
                steps, values = curves.setdefault(seed, ([], []))
                steps.append(int(row["step"]))
                values.append(float(value))
    return curves


def checkpoint_metadata(run: str, config: dict[str, Any]) -> dict[str, Any]:
    """The metadata of the run's checkpoint, after checking that the file is
    whole and was written by a run of the same identity as `config`."""
    from .._checkpoint import read_checkpoint_metadata

    path = os.path.join(run, CHECKPOINT)
    if not os.path.exists(path):
        raise RunError(
            f"{path!r} does not exist: the run stopped before its first "
            "checkpoint (start it again with --overwrite)"
        )
    try:
        meta = read_checkpoint_metadata(path)
    except ValueError as error:
        raise RunError(str(error)) from None
    expected = identity(config)
    for section, values in expected.items():
        saved = meta.get("identity", {}).get(section) or {}
        for name in sorted(set(values or {}) | set(saved)):
            mine, theirs = (values or {}).get(name), saved.get(name)
            if mine != theirs:
                where = "" if section == "options" else f"{section}."
                raise RunError(
                    f"{path!r} was written by a run with {where}{name}={theirs!r}, "
                    f"but {os.path.join(run, CONFIG)!r} says {where}{name}={mine!r}: "
                    "the checkpoint belongs to another run"
                )
    return meta
