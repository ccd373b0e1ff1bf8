"""`memrl-eqx plot RUN_DIR [RUN_DIR ...]`: several runs' curves in one PNG."""

import os

from . import _run
from ._plot import plot_curves


def _labels(configs: dict[tuple, dict]) -> dict[tuple, str]:
    """A label per group of runs: algorithm, torso and environment, plus every
    other option on which the groups differ."""
    differing = [
        name
        for name in _run.IDENTITY
        if name not in ("algorithm", "torso", "env", "seed")
        and len({str(c.get(name)) for c in configs.values()}) > 1
    ]
    return {
        group: f"{c['algorithm']}/{c['torso']} {c['env']}"
        + "".join(f" {name}={c.get(name)}" for name in differing)
        for group, c in configs.items()
    }


def plot_runs(runs: list[str], *, output: str, key: str = "return") -> int:
    """Plot `key` of every run in `runs` into the PNG `output`; runs that differ
    only in their seed are one group, drawn as the mean over seeds with a band
    of ± one standard deviation."""
    groups: dict[tuple, list] = {}
    configs: dict[tuple, dict] = {}
    for run in runs:
        options = _run.read_config(run)["options"]
        steps, values = _run.read_metrics(run, key)
        if not steps:
            raise _run.RunError(
                f"{os.path.join(run, _run.METRICS)!r} has no finite {key!r} values "
                "to plot (no episode ended yet, or no such metric)"
            )
        group = tuple(str(options.get(n)) for n in _run.IDENTITY if n != "seed")
        groups.setdefault(group, []).append((steps, values))
        configs[group] = options
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise _run.RunError(f"--output: the folder {folder!r} does not exist")
    labels = _labels(configs)
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
