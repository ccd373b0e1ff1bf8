"""Learning curves: one run's, or several runs' grouped over seeds."""

from collections.abc import Sequence

import numpy as np


Curve = tuple[Sequence, Sequence]
"""`(steps, values)` of one run."""


def mean_and_spread(curves: Sequence[Curve], points: int = 200):
    """The mean and standard deviation over `curves` on a shared grid of steps.

    Each curve is interpolated linearly onto `points` steps spanning the range
    that every curve covers (from the latest first step to the earliest last
    step), so runs of different lengths or logging steps are compared where all
    of them have data. Returns `(grid, mean, std)`.
    """
    curves = [(np.asarray(s, float), np.asarray(v, float)) for s, v in curves]
    if any(len(s) == 0 for s, _ in curves):
        raise ValueError("every curve needs at least one point")
    start = max(s[0] for s, _ in curves)
    stop = min(s[-1] for s, _ in curves)
    if stop < start:
        raise ValueError("the curves' steps do not overlap")
    grid = np.linspace(start, stop, points if stop > start else 1)
    values = np.stack([np.interp(grid, s, v) for s, v in curves])
    return grid, values.mean(axis=0), values.std(axis=0)


def plot_curves(
    path: str,
    groups: dict[str, Sequence[Curve]],
    *,
    title: str,
    ylabel: str = "episode return",
    reference: float | None = None,
) -> None:
    """Draw one line per group into the PNG `path`: the single run's curve, or
    for several runs (seeds) their mean with a band of ± one standard deviation.
    `reference` (e.g. the final evaluation return) is drawn as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, curves in groups.items():
        if len(curves) == 1:
            ax.plot(*curves[0], label=label)
            continue
        grid, mean, std = mean_and_spread(curves)
        (line,) = ax.plot(grid, mean, label=f"{label} ({len(curves)} seeds)")
        ax.fill_between(
            grid, mean - std, mean + std, alpha=0.25, lw=0, color=line.get_color()
        )
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label="final evaluation")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
