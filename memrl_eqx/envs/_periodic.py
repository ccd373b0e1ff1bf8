from typing import Any

import equinox as eqx
import jax.numpy as jnp
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Int, PRNGKeyArray, PyTree

from ._arguments import check_fill, check_positive_int, fill_where
from ._spaces import widen_boxes
from ._wrapper import AbstractObservationWrapper


class PeriodicObservationState(eqx.Module):
    """The state of a [`memrl_eqx.envs.PeriodicObservation`][] environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `time`: `Int[Array, ""]`, the step of the episode in progress (`0` at its
        first observation).
    """

    env_state: PyTree
    time: Int[Array, ""]


class PeriodicObservation(AbstractObservationWrapper):
    """Shows the observation only every `period`-th step of an episode, `fill`
    in every entry otherwise.

    The observation of step `t` of an episode (`t = 0` after a reset and after
    an auto-reset) is shown when `t % period == 0`, so every episode starts with
    an observation; the step counter
    ([`memrl_eqx.envs.PeriodicObservationState`][]) restarts at every episode
    start. `info["final_observation"]` of an episode that ended after step `T`
    is shown when `(T + 1) % period == 0`, as the next observation would have
    been. Observations keep their structure, shapes and dtypes; the observation
    space is the wrapped one with each `Box` widened to contain `fill`.

    **Arguments:**

    - `env`: the environment to wrap.
    - `period`: every how many steps an observation is shown, a positive int
        (`1` shows every one).
    - `fill`: the value of every entry of a hidden observation (default 0.0).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.envs import make, PeriodicObservation

    env, params = make("gymnax::CartPole-v1")
    env = PeriodicObservation(env, period=3)
    obs, state = env.reset(jax.random.key(0), params)  # step 0: shown
    shown = [bool(jnp.any(obs != 0))]
    for t in range(5):
        obs, state, *_ = env.step(jax.random.key(t + 1), state, 0, params)
        shown.append(bool(jnp.any(obs != 0)))
    assert shown == [True, False, False, True, False, False]
    ```
    """

    period: int = eqx.field(static=True)
    fill: float = eqx.field(static=True)

    def __init__(self, env: Environment, period: int, fill: float = 0.0):
        super().__init__(env)
        self.period = check_positive_int(period, "period")
        self.fill = check_fill(fill)

    def observation_space(self, params: Any = None) -> Any:
        return widen_boxes(self.env.observation_space(params), self.fill)

    def init_state(
        self, key: PRNGKeyArray, obs: PyTree, env_state: PyTree, params: Any
    ) -> PeriodicObservationState:
        del key, obs, params
        return PeriodicObservationState(env_state, jnp.array(0, jnp.int32))

    def update_state(
        self,
        key: PRNGKeyArray,
        state: PeriodicObservationState,
        env_state: PyTree,
        action: Any,
        obs: PyTree,
        reward: Array,
        done: Bool[Array, ""],
        params: Any,
    ) -> tuple[PeriodicObservationState, PeriodicObservationState]:
        del key, action, obs, reward, params
        time = state.time + 1
        return (
            PeriodicObservationState(env_state, time),
            PeriodicObservationState(env_state, jnp.where(done, 0, time)),
        )

    def inner_state(self, state: PeriodicObservationState) -> PyTree:
        return state.env_state

    def observation(
        self,
        key: PRNGKeyArray,
        obs: PyTree,
        state: PeriodicObservationState,
        first: Bool[Array, ""],
    ) -> PyTree:
        del key, first
        return fill_where(state.time % self.period != 0, obs, self.fill)
