"""MMER, POPGym's score: the maximum over training of the batch-mean return."""

from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike, Float


def mmer(returns: ArrayLike | Sequence) -> Float[np.ndarray, "*seeds"]:
    """The maximum mean episodic return (MMER) of a training run, as POPGym
    (Morad et al., ICLR 2023) scores its benchmark: the mean return of the
    episodes that ended in each training batch (one PPO update's rollout), and
    the maximum of that mean over training.

    `returns` is the per-update curve that `PPO.train` reports as
    `metrics["return"]` (the mean over the episodes completed during that
    update's rollout, NaN where none completed). Updates without a completed
    episode are skipped; a run in which no episode ever ended has no MMER (NaN).

    **Arguments:**

    - `returns`: the per-update mean episodic returns, an array (or nested
      lists) of shape `(updates,)` for one run or `(seeds, updates)` for several
      (one MMER per seed); NaN where an update completed no episode.

    **Returns:** a NumPy float64 array of shape `()` for one run or `(seeds,)`.

    **Raises:** `ValueError` if `returns` is not 1-d or 2-d, has no updates, or
    holds an infinite value (a diverged run has no meaningful maximum).

    **Example:**

    ```python
    import math

    import numpy as np
    from memrl_eqx.bench import mmer

    curve = np.array([np.nan, -0.5, 0.25, 0.75, 0.5])  # one mean per update
    assert mmer(curve) == 0.75
    per_seed = mmer(np.stack([curve, curve - 1.0]))
    assert per_seed.tolist() == [0.75, -0.25]
    assert math.isnan(mmer([np.nan, np.nan]))  # no episode ever ended
    ```
    """
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[-1] == 0:
        raise ValueError(
            "mmer: `returns` must have shape (updates,) or (seeds, updates) with "
            f"at least one update; got shape {values.shape}."
        )
    if np.any(np.isinf(values)):
        raise ValueError(
            "mmer: `returns` holds an infinite value; a per-update mean episodic "
            "return is finite, or NaN where no episode ended."
        )
    ended = ~np.isnan(values)
    best = np.max(np.where(ended, values, -np.inf), axis=-1)
    return np.where(np.any(ended, axis=-1), best, np.nan)
