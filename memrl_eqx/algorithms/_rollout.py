"""Acting in vectorised environments: the pieces every algorithm shares."""

from typing import Any

import equinox as eqx
import jax
import jax.lax as lax
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
    and integer actions, which strict promotion rejects). Weakly typed leaves of
    the result are made strong.
    """
    with jax.numpy_dtype_promotion("standard"):
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jr.split(key, num_envs), env_params
        )
    # Some environments reset to weakly typed leaves (Pendulum's `last_u = 0.0`)
    # that stepping makes strong: fix the types now, or a second call of a jitted
    # training loop would see a new input type and compile again.
    strong = lambda x: x.astype(x.dtype) if eqx.is_array(x) else x
    return jtu.tree_map(strong, obs), jtu.tree_map(strong, env_state)


def step_envs(
    env: Environment,
    env_params: PyTree[Any],
    key: PRNGKeyArray,
    env_state: PyTree[Any],
    action: Array,
) -> tuple[PyTree[Any], PyTree[Any], Array, Array, Array, dict[str, Any]]:
    """Step a batch of environments once, as they are: `env.step` vmapped over
    the leading axis of `env_state` and `action` (one key each), under standard
    dtype promotion (see `reset_envs`). Returns `(obs, env_state, reward,
    terminated, truncated, info)` with float32 rewards, and `truncated` never set
    where `terminated` is."""
    num_envs = action.shape[0]
    with jax.numpy_dtype_promotion("standard"):
        obs, env_state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(jr.split(key, num_envs), env_state, action, env_params)
    reward = jnp.asarray(reward, jnp.float32)
    terminated = jnp.asarray(terminated, bool)
    truncated = jnp.asarray(truncated, bool) & ~terminated
    return obs, env_state, reward, terminated, truncated, info


def next_timestep(
    obs: PyTree[Array],
    action: Array,
    reward: Float[Array, " env"],
    terminated: Bool[Array, " env"],
    truncated: Bool[Array, " env"],
    info: dict[str, Any],
) -> tuple[Timestep, dict[str, Any]]:
    """The networks' next input after a batch of steps, and `info` with
    `info["final_timestep"]` where it has `"final_observation"` (see
    `step_once`, whose second half this is)."""
    reset = terminated | truncated
    mask = lambda x: jnp.where(
        reset.reshape(reset.shape + (1,) * (x.ndim - 1)), jnp.zeros_like(x), x
    )
    timestep = Timestep(
        obs=obs, prev_action=mask(action), prev_reward=mask(reward), reset=reset
    )
    if "final_observation" in info:
        # The input a network would have seen after the last step of an episode
        # cut by a time limit: the final observation, the action and reward that
        # led to it, no reset. Algorithms bootstrap from it.
        info = dict(info)
        info["final_timestep"] = Timestep(
            obs=info["final_observation"],
            prev_action=action,
            prev_reward=reward,
            reset=jnp.zeros_like(reset),
        )
    return timestep, info


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
    (zeroed where a new episode starts). Where the environment reports
    `info["final_observation"]` (`EpisodeStatistics` does), `info["final_timestep"]`
    is the input that observation makes, for bootstrapping at time limits. Runs
    the environment under standard dtype promotion (see `reset_envs`).
    """
    obs, env_state, reward, terminated, truncated, info = step_envs(
        env, env_params, key, env_state, action
    )
    timestep, info = next_timestep(obs, action, reward, terminated, truncated, info)
    return env_state, timestep, reward, terminated, truncated, info


def episode_metrics(info: dict[str, Array]) -> dict[str, Float[Array, ""]]:
    """Means over the episodes that ended during a batch of steps (NaN if none
    did), from `EpisodeStatistics`' info: `"return"`, `"length"`, and
    `"episodes"` (how many ended); and `"regret"` where the environment is
    wrapped in `BSuiteRegret`."""
    ended = info["returned_episode"]
    count = jnp.sum(ended.astype(jnp.float32))
    mean = lambda x: jnp.where(
        count > 0, jnp.sum(jnp.where(ended, x, 0.0)) / jnp.maximum(count, 1.0), jnp.nan
    )
    metrics = {
        "return": mean(info["returned_episode_return"]),
        "length": mean(info["returned_episode_length"].astype(jnp.float32)),
        "episodes": count,
    }
    if REGRET_INFO in info:
        metrics["regret"] = mean(info[REGRET_INFO])
    return metrics


EPISODE_INFO = (
    "returned_episode",
    "returned_episode_return",
    "returned_episode_length",
)
"""The keys of `EpisodeStatistics`' info that `episode_metrics` reads."""

REGRET_INFO = "returned_episode_regret"
"""The key of `BSuiteRegret`'s info that `episode_metrics` reads where present."""


def episode_info(info: dict[str, Any]) -> dict[str, Array]:
    """The part of a step's `info` that `episode_metrics` reads (what a rollout
    keeps of it)."""
    keys = EPISODE_INFO + ((REGRET_INFO,) if REGRET_INFO in info else ())
    return {k: info[k] for k in keys}


def burn_in(
    network: Network, carry: PyTree[Array], timestep: Timestep, length: int
) -> tuple[PyTree[Array], Timestep]:
    """Refresh a stored carry by running `network` over the first `length` steps
    of `timestep` (R2D2's burn-in), with no gradient into its parameters or the
    carry. Returns `(carry, rest)`: the carry after those steps and the remaining
    steps of `timestep`, on which the loss is computed. `length = 0` returns the
    inputs unchanged.
    """
    if length == 0:
        return carry, timestep
    head = jtu.tree_map(lambda x: x[:length], timestep)
    rest = jtu.tree_map(lambda x: x[length:], timestep)
    frozen = eqx.combine(
        lax.stop_gradient(eqx.filter(network, eqx.is_inexact_array)), network
    )
    carry, _ = frozen.encode(carry, head)
    return lax.stop_gradient(carry), rest


def add_time_axis(timestep: Timestep) -> Timestep:
    """One step (leaves without a time axis) as a sequence of length 1."""
    return jtu.tree_map(lambda x: x[None], timestep)
