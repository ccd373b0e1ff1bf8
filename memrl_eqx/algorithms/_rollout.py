"""Acting in vectorised environments: the pieces every algorithm shares."""

from typing import Any

import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ..nn import Network, Timestep


def batch_init_carry(network: Network, batch_size: int) -> PyTree[Array]:
    """The initial carry of `network`, repeated over a leading batch axis."""
    return jtu.tree_map(
        lambda c: jnp.broadcast_to(c, (batch_size,) + c.shape), network.init_carry()
    )


def first_timestep(obs: PyTree[Array], action_shape: tuple, action_dtype) -> Timestep:
    """The `Timestep` at a reset, for a batch of observations: no previous
    action or reward, and the reset flag set."""
    batch = jtu.tree_leaves(obs)[0].shape[0]
    return Timestep(
        obs=obs,
        prev_action=jnp.zeros((batch,) + tuple(action_shape), action_dtype),
        prev_reward=jnp.zeros((batch,), jnp.float32),
        reset=jnp.ones((batch,), bool),
    )


def reset_envs(
    env: Environment, env_params: PyTree[Any], key: PRNGKeyArray, num_envs: int
) -> tuple[PyTree[Array], PyTree[Any]]:
    """Reset `num_envs` environments: `(obs, env_state)` with a leading batch axis.

    Environments are third-party code, so they run under JAX's standard dtype
    promotion whatever the caller's setting (gymnax's CartPole mixes Python floats
    and integer actions, which strict promotion rejects).
    """
    with jax.numpy_dtype_promotion("standard"):
        return jax.vmap(env.reset, in_axes=(0, None))(
            jr.split(key, num_envs), env_params
        )


def step_once(
    env: Environment,
    env_params: PyTree[Any],
    key: PRNGKeyArray,
    env_state: PyTree[Any],
    action: Array,
) -> tuple[
    PyTree[Any],
    Timestep,
    Float[Array, " env"],
    Bool[Array, " env"],
    Bool[Array, " env"],
    dict[str, Any],
]:
    """Step a batch of auto-resetting environments once.

    Returns `(env_state, timestep, reward, terminated, truncated, info)`, where
    `timestep` is the next input of the networks: the new observation, with the
    reset flag `terminated | truncated` and the previous action and reward
    (zeroed where a new episode starts). Runs the environment under standard
    dtype promotion (see `reset_envs`).
    """
    num_envs = action.shape[0]
    with jax.numpy_dtype_promotion("standard"):
        obs, env_state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(jr.split(key, num_envs), env_state, action, env_params)
    reward = jnp.asarray(reward, jnp.float32)
    terminated = jnp.asarray(terminated, bool)
    truncated = jnp.asarray(truncated, bool) & ~terminated
    reset = terminated | truncated
    mask = lambda x: jnp.where(
        reset.reshape(reset.shape + (1,) * (x.ndim - 1)), jnp.zeros_like(x), x
    )
    timestep = Timestep(
        obs=obs, prev_action=mask(action), prev_reward=mask(reward), reset=reset
    )
    return env_state, timestep, reward, terminated, truncated, info
