"""Aggregate scores over tasks with stratified bootstrap confidence intervals.

The statistics of Agarwal et al., "Deep Reinforcement Learning at the Edge of
the Statistical Precipice" (NeurIPS 2021): the interquartile mean (IQM) of all
runs' scores on all tasks, and percentile confidence intervals from a bootstrap
that resamples the runs of each task separately (stratified by task). Written
here rather than taken from `rliable`: rliable 1.2 needs `arch < 8`, and arch
7.2 fails to import beside pandas 3 (`deprecate_kwarg`).
"""

from collections.abc import Callable

import numpy as np
import scipy.stats
from jaxtyping import ArrayLike, Float


def iqm(scores: ArrayLike) -> float:
    """The interquartile mean of all the scores: the mean of those between the
    25th and the 75th percentile (a 25% trimmed mean, `scipy.stats.trim_mean`).

    **Arguments:** `scores`, an array of any shape (e.g. `(runs, tasks)`),
    flattened.

    **Returns:** a float.
    """
    return float(scipy.stats.trim_mean(np.asarray(scores, float), 0.25, axis=None))


def mean(scores: ArrayLike) -> float:
    """The mean of all the scores (`scores` of any shape, flattened)."""
    return float(np.mean(np.asarray(scores, float)))


def stratified_bootstrap(
    scores: ArrayLike,
    statistic: Callable[[np.ndarray], float] = iqm,
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The statistic of `scores` and its percentile bootstrap confidence
    interval, resampling the runs of each task with replacement (each task
    keeps its number of runs).

    **Arguments:**

    - `scores`: shape `(runs, tasks)`, finite.
    - `statistic`: a function of a `(runs, tasks)` array to a float; default
      `iqm`.
    - `reps`: bootstrap resamples. Default 2000.
    - `confidence`: the interval's coverage, in (0, 1). Default 0.95.
    - `seed`: seed of the resampling (NumPy's `default_rng`). Default 0.

    **Returns:** `(point, low, high)`.

    **Raises:** `ValueError` for scores that are not a non-empty 2-d finite
    array, or `reps`/`confidence` out of range.
    """
    x = np.asarray(scores, float)
    if x.ndim != 2 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(
            "stratified_bootstrap: `scores` must be a non-empty finite array of "
            f"shape (runs, tasks); got shape {x.shape}."
        )
    if not isinstance(reps, int) or reps < 1 or not 0 < confidence < 1:
        raise ValueError(
            "stratified_bootstrap: `reps` must be a positive int and `confidence` "
            f"in (0, 1); got {reps!r} and {confidence!r}."
        )
    rng = np.random.default_rng(seed)
    runs, tasks = x.shape
    # One resample: for every task, `runs` of its runs drawn with replacement.
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(x[None], picks, axis=1)
    values = np.array([statistic(r) for r in resampled])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(statistic(x)), float(low), float(high)


def normalised(mmer: Float[np.ndarray, "..."]) -> Float[np.ndarray, "..."]:
    """POPGym scores mapped from their range [-1, 1] to [0, 1]: `(x + 1) / 2`."""
    return (np.asarray(mmer, float) + 1.0) / 2.0
