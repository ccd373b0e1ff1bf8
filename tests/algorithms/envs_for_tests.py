"""Tiny gymnax environments with known answers, for algorithm tests."""

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class TimerState(environment.EnvState):
    pass


@struct.dataclass
class TimerParams(environment.EnvParams):
    max_steps_in_episode: int = 5


class ConstantReward(environment.Environment):
    """Reward 1 every step, a constant observation, never terminated, truncated
    after `max_steps_in_episode` steps. With truncation treated correctly the
    value of the (only) observation is $1 / (1 - \\gamma)$; treating the time
    limit as a termination would instead give the mean of the partial sums."""

    @property
    def default_params(self):
        return TimerParams()

    def step_env(self, key, state, action, params):
        state = TimerState(time=state.time + 1)
        obs = jnp.ones((1,), jnp.float32)
        return obs, state, jnp.float32(1.0), jnp.bool_(False), {}

    def reset_env(self, key, params):
        return jnp.ones((1,), jnp.float32), TimerState(time=0)

    def is_terminated(self, state, params):
        return jnp.bool_(False)

    @property
    def name(self):
        return "ConstantReward"

    @property
    def num_actions(self):
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)


@struct.dataclass
class CueState(environment.EnvState):
    cue: jax.Array


@struct.dataclass
class CueParams(environment.EnvParams):
    delay: int = 1
    max_steps_in_episode: int = 100


class RecallCue(environment.Environment):
    """A one-bit memory task. The first observation shows a cue, `(+1, 0)` or
    `(-1, 0)`, drawn uniformly; then `delay` blank steps `(0, 0)`; then a query
    `(0, 1)`, at which the action is scored: +1 if it names the cue (action 0
    for -1, action 1 for +1), else -1, and the episode ends. Every other step
    gives 0. A memoryless policy sees the same query either way, so its expected
    return is 0; remembering the cue earns 1."""

    @property
    def default_params(self):
        return CueParams()

    def _obs(self, state, params):
        first = jnp.where(state.time == 0, state.cue, 0.0)
        query = jnp.where(state.time == params.delay + 1, 1.0, 0.0)
        return jnp.stack([first, query]).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        at_query = state.time == params.delay + 1
        right = (action == 1) == (state.cue > 0)
        reward = jnp.where(at_query, jnp.where(right, 1.0, -1.0), 0.0)
        state = CueState(time=state.time + 1, cue=state.cue)
        done = at_query
        return self._obs(state, params), state, reward.astype(jnp.float32), done, {}

    def reset_env(self, key, params):
        cue = jnp.where(jax.random.bernoulli(key), 1.0, -1.0).astype(jnp.float32)
        state = CueState(time=0, cue=cue)
        return self._obs(state, params), state

    def is_terminated(self, state, params):
        return state.time > params.delay + 1

    @property
    def name(self):
        return "RecallCue"

    @property
    def num_actions(self):
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)


__all__ = ["ConstantReward", "RecallCue", "jax"]
