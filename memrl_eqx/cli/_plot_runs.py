"""`memrl-eqx plot RUN_DIR [RUN_DIR ...]`: several runs' curves in one PNG."""

import json
import os

from . import _run
from ._plot import plot_curves


def _settings(config: dict) -> dict[str, str]:
    """What defines a run apart from its seeds, flattened to `name: value`."""
    out = {}
    for section, values in _run.identity(config).items():
        prefix = "" if section == "options" else f"{section}."
        for name, value in (values or {}).items():
            if name not in ("seed", "seeds"):
                out[prefix + name] = json.dumps(value)
    return out


def _labels(settings: dict[tuple, dict[str, str]]) -> dict[tuple, str]:
    """A label per group of runs: algorithm, torso and environment, plus every
    other setting on which the groups differ."""
    names = sorted({name for s in settings.values() for name in s})
    differing = [
        name
        for name in names
        if name not in ("algorithm", "torso", "env")
        and len({s.get(name) for s in settings.values()}) > 1
    ]
    return {
        group: f"{json.loads(s['algorithm'])}/{json.loads(s['torso'])} "
        f"{json.loads(s['env'])}"
        + "".join(f" {name}={s.get(name)}" for name in differing)
        for group, s in settings.items()
    }


def plot_runs(runs: list[str], *, output: str, key: str = "return") -> int:
    """Plot `key` of every run in `runs` into the PNG `output`; runs (and the
    seeds of a run) that differ only in their seed are one group, drawn as the
    mean over seeds with a band of ± one standard deviation."""
    groups: dict[tuple, list] = {}
    settings: dict[tuple, dict[str, str]] = {}
    for run in runs:
        config = _run.read_config(run)
        curves = _run.read_curves(run, key)
        if not curves:
            raise _run.RunError(
                f"{os.path.join(run, _run.METRICS)!r} has no finite {key!r} values "
                "to plot (no episode ended yet, or no such metric)"
            )
        setting = _settings(config)
        group = tuple(sorted(setting.items()))
        groups.setdefault(group, []).extend(curves.values())
        settings[group] = setting
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise _run.RunError(f"--output: the folder {folder!r} does not exist")
    labels = _labels(settings)
    try:
        plot_curves(
            output,
            {labels[g]: curves for g, curves in groups.items()},
            title=f"{key} over {len(runs)} run{'s' * (len(runs) > 1)}",
            ylabel=key,
        )
    except ValueError as error:  # the runs' steps do not overlap
        raise _run.RunError(f"cannot plot these runs together: {error}") from None
    print(f"wrote {output}")
    return 0
