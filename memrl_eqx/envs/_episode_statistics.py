import functools as ft
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from ._wrapper import AbstractWrapper


class EpisodeStatisticsState(eqx.Module):
    """The state of an [`memrl_eqx.envs.EpisodeStatistics`][] environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `episode_return`, `episode_length`: the undiscounted return and the number of
        steps of the episode in progress (`0` right after a reset).
    - `returned_episode_return`, `returned_episode_length`: those of the last
        episode that finished (`0` before any has).

    All four statistics are scalars: float32 returns, int32 lengths.
    """

    env_state: PyTree
    episode_return: Float[Array, ""]
    episode_length: Int[Array, ""]
    returned_episode_return: Float[Array, ""]
    returned_episode_length: Int[Array, ""]


class EpisodeStatistics(AbstractWrapper):
    """Records the return and length of every episode of a gymnax environment.

    `step` returns what the wrapped environment's `step` returns (observation,
    reward, `terminated`, `truncated`, and an `info` that keeps
    `"final_observation"`, `"terminated"`, `"truncated"`), with three entries added
    to `info`:

    - `"returned_episode"`: `Bool[Array, ""]`, whether an episode ended at this
        step (`terminated | truncated`);
    - `"returned_episode_return"`: `Float[Array, ""]`, the undiscounted return of
        the episode that ended at this step if one did, else of the last episode
        that ended (`0` before any has);
    - `"returned_episode_length"`: `Int[Array, ""]`, likewise its number of steps.

    Everything else (`default_params`, `name`, `num_actions`, the spaces, and any
    other attribute) is the wrapped environment's (see
    [`memrl_eqx.envs.AbstractWrapper`][], which also gives it value equality).
    Works under `jax.jit` and `jax.vmap`; the statistics are per environment.
    Wrapped around [`memrl_eqx.envs.NormalizeReward`][] it records the normalised
    rewards: wrap it inside to record the environment's own.

    **Arguments:** `env`, the gymnax environment to wrap (its `step` must
    auto-reset, as gymnax's does).

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import EpisodeStatistics, make

    env, params = make("popgym::RepeatPreviousEasy")
    env = EpisodeStatistics(env)
    key_reset, key_step = jax.random.split(jax.random.key(0))
    obs, state = env.reset(key_reset, params)
    obs, state, reward, terminated, truncated, info = env.step(
        key_step, state, 0, params
    )
    assert state.episode_length == 1 and not info["returned_episode"]
    ```
    """

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: PRNGKeyArray, params: Any = None
    ) -> tuple[PyTree, EpisodeStatisticsState]:
        """Resets the wrapped environment; the statistics start at zero."""
        obs, env_state = self.env.reset(key, params)
        zero_return = jnp.array(0.0, dtype=jnp.float32)
        zero_length = jnp.array(0, dtype=jnp.int32)
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=zero_return,
            episode_length=zero_length,
            returned_episode_return=zero_return,
            returned_episode_length=zero_length,
        )
        return obs, state

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: PRNGKeyArray,
        state: EpisodeStatisticsState,
        action: Any,
        params: Any = None,
    ) -> tuple[
        PyTree,
        EpisodeStatisticsState,
        Array,
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Steps the wrapped environment and updates the episode statistics."""
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        terminated = jnp.asarray(terminated, dtype=bool)
        truncated = jnp.asarray(truncated, dtype=bool)
        done = terminated | truncated
        episode_return = state.episode_return + jnp.asarray(reward).astype(jnp.float32)
        episode_length = state.episode_length + 1
        returned_episode_return = jnp.where(
            done, episode_return, state.returned_episode_return
        )
        returned_episode_length = jnp.where(
            done, episode_length, state.returned_episode_length
        )
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0, episode_length),
            returned_episode_return=returned_episode_return,
            returned_episode_length=returned_episode_length,
        )
        info = {
            **info,
            "returned_episode": done,
            "returned_episode_return": returned_episode_return,
            "returned_episode_length": returned_episode_length,
        }
        return obs, state, reward, terminated, truncated, info
