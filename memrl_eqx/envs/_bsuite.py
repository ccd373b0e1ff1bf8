import functools as ft
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import bsuite
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ._wrapper import AbstractWrapper


# The tasks whose optimal return is 1 and whose only rewards are the ones the
# regret counts.
_OPTIMAL_ONE = (bsuite.Catch, bsuite.MemoryChain)
# The tasks whose optimal return is `params.optimal_return`.
_OPTIMAL_PARAM = (bsuite.SimpleBandit, bsuite.MNISTBandit, bsuite.DiscountingChain)
_TASKS = (*_OPTIMAL_ONE, *_OPTIMAL_PARAM, bsuite.UmbrellaChain, bsuite.DeepSea)


class BSuiteRegretState(eqx.Module):
    """The state of a [`memrl_eqx.envs.BSuiteRegret`][] environment.

    **Fields:**

    - `env_state`: the wrapped bsuite environment's state.
    - `episode_regret`: `Float[Array, ""]`, the regret of the episode in progress
        counted so far (`0` after a reset).
    - `returned_episode_regret`: `Float[Array, ""]`, the regret of the last
        episode that ended (`0` before any has).
    - `total_regret`: `Float[Array, ""]`, the summed regret of every episode that
        ended so far in this environment (bsuite's `total_regret`).
    """

    env_state: PyTree
    episode_regret: Float[Array, ""]
    returned_episode_regret: Float[Array, ""]
    total_regret: Float[Array, ""]


class BSuiteRegret(AbstractWrapper):
    """Records bsuite's regret of every episode of a gymnax bsuite task.

    The regret of an episode is how much less return it earned than an optimal
    agent's, as bsuite defines it per task (Osband et al. 2020):

    - `Catch-bsuite`, `MemoryChain-bsuite`: `1 - return`, `0` for a catch or a
        correct recall and `2` for a miss;
    - `SimpleBandit-bsuite`, `MNISTBandit-bsuite`: `params.optimal_return -
        return` (one-step episodes; the optimal return is 1);
    - `UmbrellaChain-bsuite`: `1 - r_T`, where `r_T` is the reward of the
        episode's last step (`0` if the umbrella choice was right, `2` if not);
        the random distractor rewards on the way are not counted;
    - `DiscountingChain-bsuite`: `params.optimal_return - return` (1.1, the
        bonus chain's reward);
    - `DeepSea-bsuite`: `state.optimal_return - return` with the reward noise of
        the stochastic variant left out (the treasure minus the move costs
        paid): `0` on the optimal path, about `1` for an episode that misses
        the treasure.

    An episode cut by a time limit counts as it ended (none of these tasks is
    cut at its default params). `step` returns what the wrapped environment's
    `step` returns, with two entries added to `info`:

    - `"returned_episode_regret"`: `Float[Array, ""]`, the regret of the episode
        that ended at this step if one did, else of the last one that ended (`0`
        before any has);
    - `"total_regret"`: `Float[Array, ""]`, the summed regret of every episode
        that ended so far, at this step included (what bsuite logs).

    The state ([`memrl_eqx.envs.BSuiteRegretState`][]) keeps them, per
    environment under `jax.vmap`. The training algorithms' metrics include
    `"regret"`, the mean regret of the episodes that ended in an update; in your
    own loop, read them from `info`.

    **Arguments:**

    - `env`: a gymnax bsuite environment itself (from `make("gymnax::...-bsuite")`),
        not wrapped: the regret is computed from its own rewards and, for
        DeepSea, its state.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import BSuiteRegret, make

    env, params = make("gymnax::MemoryChain-bsuite")  # an episode is 6 steps
    env = BSuiteRegret(env)
    obs, state = env.reset(jax.random.key(0), params)
    for t in range(6):
        obs, state, reward, terminated, truncated, info = env.step(
            jax.random.key(t + 1), state, 0, params
        )
    assert terminated and info["returned_episode_regret"] == 1.0 - reward
    ```
    """

    def __init__(self, env: Environment):
        super().__init__(env)
        if not isinstance(env, _TASKS):
            names = ", ".join(sorted(t.__name__ for t in _TASKS))
            raise ValueError(
                "BSuiteRegret needs env to be one of gymnax's bsuite environments "
                f"({names}) itself, not wrapped; got {type(env).__name__}. Wrap "
                "other wrappers around BSuiteRegret."
            )

    def _step_regret(
        self,
        state: PyTree,
        action: Any,
        reward: Array,
        terminated: Bool[Array, ""],
        done: Bool[Array, ""],
        params: Any,
    ) -> Float[Array, ""]:
        """The regret one step adds, from the state it was taken in; summed over an
        episode it is the episode's regret."""
        reward = jnp.asarray(reward).astype(jnp.float32)
        ended = done.astype(jnp.float32)
        env = self.env
        if isinstance(env, _OPTIMAL_ONE):
            return ended - reward
        if isinstance(env, _OPTIMAL_PARAM):
            return ended * jnp.asarray(params.optimal_return, jnp.float32) - reward
        if isinstance(env, bsuite.UmbrellaChain):
            final = jnp.where(terminated, reward, 0.0)
            return jnp.where(done, 1.0 - final, 0.0)
        # DeepSea: the treasure and the move cost, from the state the step left.
        right = jnp.asarray(action) == state.action_mapping[state.row, state.column]
        treasure = (state.column == env.size - 1) & right
        cost = right * jnp.asarray(params.unscaled_move_cost, jnp.float32) / env.size
        denoised = treasure.astype(jnp.float32) - cost
        optimal = jnp.asarray(state.optimal_return, jnp.float32)
        return ended * optimal - denoised

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: PRNGKeyArray, params: Any = None
    ) -> tuple[PyTree, BSuiteRegretState]:
        obs, env_state = self.env.reset(key, params)
        zero = jnp.array(0.0, jnp.float32)
        return obs, BSuiteRegretState(env_state, zero, zero, zero)

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: PRNGKeyArray,
        state: BSuiteRegretState,
        action: Any,
        params: Any = None,
    ) -> tuple[PyTree, BSuiteRegretState, Array, Array, Array, dict[str, Any]]:
        env_params = self.env.default_params if params is None else params
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        terminated = jnp.asarray(terminated, dtype=bool)
        done = terminated | jnp.asarray(truncated, dtype=bool)
        regret = state.episode_regret + self._step_regret(
            state.env_state, action, reward, terminated, done, env_params
        )
        returned = jnp.where(done, regret, state.returned_episode_regret)
        total = state.total_regret + jnp.where(done, regret, 0.0)
        state = BSuiteRegretState(
            env_state, jnp.where(done, 0.0, regret), returned, total
        )
        info = {**info, "returned_episode_regret": returned, "total_regret": total}
        return obs, state, reward, terminated, truncated, info
