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


__all__ = ["ConstantReward", "jax"]
