"""Evaluation: run whole episodes with a fixed policy."""

from collections.abc import Callable
from typing import Any

import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from gymnax.environments.environment import Environment
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ..nn import Timestep
from ._rollout import first_timestep, reset_envs, step_once


Policy = Callable[[PyTree[Array], Timestep, PRNGKeyArray], tuple[PyTree[Array], Array]]
"""`act(carry, timestep, key) -> (carry, action)` for one environment and one step
(leaves of `timestep` without batch or time axes)."""


def evaluate_policy(
    env: Environment,
    env_params: PyTree[Any],
    act: Policy,
    init_carry: PyTree[Array],
    key: PRNGKeyArray,
    num_episodes: int,
    action_dtype: Any = None,
) -> dict[str, Float[Array, " episodes"]]:
    """Run one episode in each of `num_episodes` fresh environments with the
    policy `act`, every carry starting at `init_carry`.

    Stops when every episode has ended (a `lax.while_loop`). Returns per-episode
    `"return"` and `"length"`, each of shape `(num_episodes,)`.

    **Arguments:**

    - `env`, `env_params`: a gymnax environment that auto-resets (e.g. from
      [`memrl_eqx.envs.make`][]) and its params.
    - `act`: `act(carry, timestep, key) -> (carry, action)` for one environment
      and one step: the leaves of the [`memrl_eqx.nn.Timestep`][] have no batch
      or time axis. It is vmapped over the episodes.
    - `init_carry`: the carry every episode starts with (e.g. a network's
      `init_carry()`; `()` for a memoryless policy).
    - `key`: a PRNG key for the resets, the environments and `act`.
    - `num_episodes`: how many episodes (and environments) to run, a positive
      Python `int`.
    - `action_dtype`: the dtype of the previous action in the first timestep;
      by default int32 for a discrete action space and float32 otherwise.

    **Returns:** `{"return": ..., "length": ...}`; an episode's return is the
    sum of its rewards up to and including its last step.
    """
    if not isinstance(num_episodes, int) or num_episodes < 1:
        raise ValueError(
            "evaluate: `num_episodes` must be a positive integer; "
            f"got {num_episodes!r}."
        )
    reset_key, key = jr.split(key)
    obs, env_state = reset_envs(env, env_params, reset_key, num_episodes)
    space = env.action_space(env_params)
    if action_dtype is None:
        action_dtype = jnp.int32 if hasattr(space, "n") else jnp.float32
    timestep = first_timestep(obs, space.shape, action_dtype)
    carry = jtu.tree_map(
        lambda c: jnp.broadcast_to(c, (num_episodes,) + c.shape), init_carry
    )
    zeros = jnp.zeros((num_episodes,), jnp.float32)
    running = jnp.ones((num_episodes,), bool)

    def body(loop):
        key, env_state, timestep, carry, running, returns, lengths = loop
        key, act_key, env_key = jr.split(key, 3)
        carry, action = jax.vmap(act)(carry, timestep, jr.split(act_key, num_episodes))
        env_state, timestep, reward, terminated, truncated, _ = step_once(
            env, env_params, env_key, env_state, action
        )
        returns = returns + jnp.where(running, reward, 0.0)
        lengths = lengths + running.astype(jnp.float32)
        running = running & ~(terminated | truncated)
        return key, env_state, timestep, carry, running, returns, lengths

    loop = (key, env_state, timestep, carry, running, zeros, zeros)
    *_, returns, lengths = lax.while_loop(lambda loop: jnp.any(loop[4]), body, loop)
    return {"return": returns, "length": lengths}
