"""`memrl-eqx evaluate RUN_DIR`: the return of a run's checkpointed policies."""

import os

from . import _run
from ._build import build_seeds, evaluate_states, init_states


def evaluate(run: str, *, episodes: int, seed: int | None) -> int:
    """Load the checkpoint of `run`, play `episodes` episodes with the policy of
    each of its seeds and print their mean, spread and range (per seed, and the
    mean over seeds). `seed` picks the episodes (default: the run's own
    evaluation keys)."""
    import jax.random as jr
    import numpy as np

    from .._checkpoint import load_checkpoint

    resolved = _run.read_resolved(run)
    meta = _run.checkpoint_metadata(run, resolved)
    seeds = build_seeds(resolved)
    try:
        state = load_checkpoint(
            os.path.join(run, _run.CHECKPOINT), init_states(seeds, 0)
        )
    except ValueError as error:
        raise _run.RunError(str(error)) from None
    keys = seeds.eval_keys
    if seed is not None:
        keys = jr.split(jr.key(seed), len(seeds.seeds))
    returns = np.asarray(evaluate_states(seeds, state, keys, episodes))
    head = f"{run} at step {meta['step']:,}"
    for s, r in zip(seeds.seeds, returns):
        prefix = f"{head}, seed {s}" if len(seeds.seeds) > 1 else head
        print(
            f"{prefix}: return {r.mean():.3f} ± {r.std():.3f} over {episodes} "
            f"episodes (min {r.min():.3f}, max {r.max():.3f})"
        )
    if len(seeds.seeds) > 1:
        means = returns.mean(axis=1)
        print(
            f"{head}: mean return over {len(seeds.seeds)} seeds {means.mean():.3f} "
            f"± {means.std():.3f}"
        )
    return 0
