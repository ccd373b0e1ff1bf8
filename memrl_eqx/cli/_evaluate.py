"""`memrl-eqx evaluate RUN_DIR`: the return of a run's checkpointed policy."""

import os

from . import _run
from ._build import build_algorithm, make_env


def evaluate(run: str, *, episodes: int, seed: int | None) -> int:
    """Load the checkpoint of `run`, play `episodes` episodes with its policy and
    print their mean, spread and range. `seed` picks the episodes (default: the
    run's own evaluation key)."""
    import jax.numpy as jnp
    import jax.random as jr

    from .._checkpoint import load_checkpoint

    config = _run.read_config(run)
    meta = _run.checkpoint_metadata(run, config)
    options = config["options"]
    env, env_params = make_env(options["env"])
    net_key, init_key, eval_key = jr.split(jr.key(options["seed"]), 3)
    algo, _, _ = build_algorithm(options, env, env_params, net_key)
    try:
        state = load_checkpoint(os.path.join(run, _run.CHECKPOINT), algo.init(init_key))
    except ValueError as error:
        raise _run.RunError(str(error)) from None
    key = eval_key if seed is None else jr.key(seed)
    returns = algo.evaluate(state, key, episodes)["return"]
    print(
        f"{run} at step {meta['step']:,}: return {float(jnp.mean(returns)):.3f} "
        f"± {float(jnp.std(returns)):.3f} over {episodes} episodes "
        f"(min {float(jnp.min(returns)):.3f}, max {float(jnp.max(returns)):.3f})"
    )
    return 0
