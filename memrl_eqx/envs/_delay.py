from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, PRNGKeyArray, PyTree

from ._arguments import check_fill, check_positive_int
from ._spaces import widen_boxes
from ._wrapper import AbstractObservationWrapper


class DelayObservationState(eqx.Module):
    """The state of a [`memrl_eqx.envs.DelayObservation`][] environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `window`: the wrapped environment's observations of the last `delay + 1`
        steps of the episode in progress, oldest first, each leaf of shape
        `(delay + 1, *leaf_shape)`; slots from before the episode's start hold
        `fill`. The observation returned is `window[0]`.
    """

    env_state: PyTree
    window: PyTree[Array]


class DelayObservation(AbstractObservationWrapper):
    """Delays observations by `delay` steps within each episode.

    At step `t` of an episode (`t = 0` after a reset) the agent sees the wrapped
    environment's observation of step `t - delay` of the **same** episode; for
    the first `delay` steps, `t < delay`, it sees `fill` in every entry (in each
    leaf's dtype). The delay buffer
    ([`memrl_eqx.envs.DelayObservationState`][]) starts afresh at every episode
    start, after `reset` and after an auto-reset, so no observation of an
    episode is ever shown in the next (the Flax original's buffer leaked across
    episodes). `info["final_observation"]` of an episode that ended after step
    `T` is that episode's observation of step `T + 1 - delay` (or `fill` if
    `T + 1 < delay`): what the agent would have seen next had the episode not
    ended. Where no episode ended it equals the returned observation. The
    observation space is the wrapped one with each `Box` widened to contain
    `fill`.

    **Arguments:**

    - `env`: the environment to wrap.
    - `delay`: by how many steps observations are delayed, a positive int.
    - `fill`: what is shown before an episode has `delay` steps of past
        (default 0.0).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.envs import DelayObservation, make

    env, params = make("gymnax::CartPole-v1")
    env = DelayObservation(env, delay=2)
    obs, state = env.reset(jax.random.key(0), params)
    assert jnp.all(obs == 0.0)  # the first two observations are the fill
    first = state.window[-1]  # the (undelayed) first observation of the episode
    for t in range(2):
        obs, state, *_ = env.step(jax.random.key(t + 1), state, 0, params)
    assert jnp.all(obs == first)  # step 2 shows step 0
    ```
    """

    delay: int = eqx.field(static=True)
    fill: float = eqx.field(static=True)

    def __init__(self, env: Environment, delay: int, fill: float = 0.0):
        super().__init__(env)
        self.delay = check_positive_int(delay, "delay")
        self.fill = check_fill(fill)

    def observation_space(self, params: Any = None) -> Any:
        return widen_boxes(self.env.observation_space(params), self.fill)

    def _fresh(self, obs: PyTree) -> PyTree:
        """The window at an episode start: `fill`, then `obs`."""

        def fresh(x):
            x = jnp.asarray(x)
            past = jnp.full((self.delay,) + x.shape, self.fill, x.dtype)
            return jnp.concatenate([past, x[None]])

        return jax.tree.map(fresh, obs)

    def init_state(
        self, key: PRNGKeyArray, obs: PyTree, env_state: PyTree, params: Any
    ) -> DelayObservationState:
        del key, params
        return DelayObservationState(env_state, self._fresh(obs))

    def update_state(
        self,
        key: PRNGKeyArray,
        state: DelayObservationState,
        env_state: PyTree,
        action: Any,
        obs: PyTree,
        reward: Array,
        done: Bool[Array, ""],
        params: Any,
    ) -> tuple[DelayObservationState, DelayObservationState]:
        del key, action, reward, params
        shifted = jax.tree.map(
            lambda w, x: jnp.concatenate([w[1:], jnp.asarray(x, w.dtype)[None]]),
            state.window,
            obs,
        )
        window = jax.tree.map(
            lambda f, s: jnp.where(done, f.astype(s.dtype), s),
            self._fresh(obs),
            shifted,
        )
        # For `info["final_observation"]` only slot 0 is read: the ended episode's
        # observation `delay` steps before its final one. (Its newest slot holds
        # the new episode's first observation, which is never shown from it.)
        return (
            DelayObservationState(env_state, shifted),
            DelayObservationState(env_state, window),
        )

    def inner_state(self, state: DelayObservationState) -> PyTree:
        return state.env_state

    def observation(
        self,
        key: PRNGKeyArray,
        obs: PyTree,
        state: DelayObservationState,
        first: Bool[Array, ""],
    ) -> PyTree:
        del key, obs, first
        return jax.tree.map(lambda w: w[0], state.window)
