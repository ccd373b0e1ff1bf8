import math
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.classic_control import pendulum
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from ._validation import _at_least, _check_noise_sigma


# Pendulum-v1's reward is `-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)`, with the
# angle in `[-pi, pi]`, `|theta_dot| <= 8` and `|u| <= 2`: it lies in
# `[-_WORST_COST, 0]`, which POPGym maps affinely onto `[-1, 1]`.
_WORST_COST = math.pi**2 + 0.1 * 8.0**2 + 0.001 * 2.0**2  # 16.2736044


class StatelessPendulum(pendulum.Pendulum):
    """POPGym's Stateless Pendulum: Pendulum-v1 with the angular velocity hidden.

    The task is to swing a pendulum up and balance it upright with a bounded
    torque. The dynamics, the initial state (angle uniform in `[-pi, pi]`, angular
    velocity uniform in `[-1, 1]`) and the actions are gymnax's `Pendulum-v1`,
    whose state and params this environment shares:

    - the action is a torque, `Float[Array, "1"]` in `Box(-2, 2, (1,))`
        (`params.max_torque`); torques outside are clipped;
    - the observation is `[cos(theta), sin(theta)]`, `Float[Array, "2"]` in
        `Box(-1, 1, (2,))`, with `theta = 0` upright. The angular velocity, which
        Pendulum-v1 observes, must be inferred from memory of past angles;
    - the reward is Pendulum-v1's cost `-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)`
        (angle wrapped to `[-pi, pi]`, before the step), whose range
        `[-16.2736, 0]` is mapped affinely onto `[-1, 1]` and divided by
        `max_steps_in_episode`, as POPGym does. A step is worth between
        `-1 / max_steps_in_episode` (hanging straight down, spinning at full
        speed, full torque) and `1 / max_steps_in_episode` (upright and still),
        so the episode return lies in `[-1, 1]`.

    There is no terminal state: every episode is *truncated* after
    `params.max_steps_in_episode` steps.

    **Arguments:**

    - `max_steps_in_episode`: the episode length, which also sets the reward
        scale (POPGym's Easy/Medium/Hard use 200/150/100).

    Keyword only; the default is `max_steps_in_episode=200`.
    """

    max_steps_in_episode: int

    def __init__(self, *, max_steps_in_episode: int = 200):
        super().__init__()
        self.max_steps_in_episode = _at_least(
            "max_steps_in_episode", max_steps_in_episode, 1
        )
        self.obs_shape = (2,)

    @property
    def default_params(self) -> pendulum.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return pendulum.EnvParams(max_steps_in_episode=self.max_steps_in_episode)

    def get_obs(
        self, state: pendulum.EnvState, params: Any = None, key: Any = None
    ) -> Float[Array, "2"]:
        """The observation `[cos(theta), sin(theta)]` of a state."""
        del params, key
        theta = jnp.asarray(state.theta)
        return jnp.stack([jnp.cos(theta), jnp.sin(theta)]).astype(jnp.float32)

    def step_env(
        self,
        key: PRNGKeyArray,
        state: pendulum.EnvState,
        action: Float[ArrayLike, "1"] | Float[ArrayLike, ""],
        params: pendulum.EnvParams,
    ) -> tuple[
        Float[Array, "2"],
        pendulum.EnvState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """One step of Pendulum-v1's dynamics, observed without the velocity."""
        torque = jnp.reshape(jnp.asarray(action).astype(jnp.float32), (1,))
        # gymnax's Pendulum mixes Python floats and ints with float32 arrays, which
        # strict dtype promotion rejects; its arithmetic is float32 either way.
        with jax.numpy_dtype_promotion("standard"):
            obs, state, cost, _, info = super().step_env(key, state, torque, params)
        half_range = jnp.float32(_WORST_COST / 2)
        max_steps = jnp.asarray(params.max_steps_in_episode).astype(jnp.float32)
        reward = (jnp.asarray(cost).astype(jnp.float32) + half_range) / half_range
        reward = reward / max_steps
        return obs, state, reward, jnp.array(False), info

    @property
    def name(self) -> str:
        return type(self).__name__

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(-1, 1, (2,), float32)`: the cosine and sine of the angle."""
        return spaces.Box(-1.0, 1.0, (2,), dtype=jnp.float32)


class StatelessPendulumEasy(StatelessPendulum):
    """POPGym's Stateless Pendulum Easy: 200 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=200)


class StatelessPendulumMedium(StatelessPendulum):
    """POPGym's Stateless Pendulum Medium: 150 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=150)


class StatelessPendulumHard(StatelessPendulum):
    """POPGym's Stateless Pendulum Hard: 100 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=100)


class NoisyStatelessPendulum(StatelessPendulum):
    """POPGym's Noisy Stateless Pendulum: Stateless Pendulum whose observations are
    also corrupted by Gaussian noise.

    Everything but the observation is
    [`memrl_eqx.envs.popgym.StatelessPendulum`][]: Pendulum-v1's dynamics, torque
    action in `Box(-2, 2, (1,))`, POPGym's reward scaling (episode return in
    `[-1, 1]`) and the truncation after `max_steps_in_episode` steps.

    The observation is `[cos(theta), sin(theta)] + noise`, `Float[Array, "2"]`,
    where each coordinate of `noise` is drawn independently from
    `Normal(0, noise_sigma^2)` at every step and at reset, and the sum is clipped
    to `[-1, 1]`. The task tests memory twice over: the angular velocity must be
    inferred from past angles, and the noise averaged out over several of them.

    The noise is drawn from the key gymnax passes to `reset_env` and `step_env`,
    so a rollout is a deterministic function of its key.

    **Arguments:**

    - `noise_sigma`: the standard deviation of the noise added to each
        observed coordinate (POPGym's Easy/Medium/Hard use 0.1/0.2/0.3). Must
        be finite and non-negative.
    - `max_steps_in_episode`: the episode length, which also sets the reward
        scale (all of POPGym's presets use 200).

    All keyword only; the defaults are `noise_sigma=0.1`, `max_steps_in_episode=200`.
    """

    noise_sigma: float

    def __init__(self, *, noise_sigma: float = 0.1, max_steps_in_episode: int = 200):
        super().__init__(max_steps_in_episode=max_steps_in_episode)
        self.noise_sigma = _check_noise_sigma(noise_sigma)

    def _add_noise(
        self, key: PRNGKeyArray, obs: Float[Array, "2"]
    ) -> Float[Array, "2"]:
        noise = self.noise_sigma * jax.random.normal(key, (2,), dtype=jnp.float32)
        return jnp.clip(obs + noise, -1.0, 1.0)

    def reset_env(
        self, key: PRNGKeyArray, params: pendulum.EnvParams
    ) -> tuple[Float[Array, "2"], pendulum.EnvState]:
        """Draws Pendulum-v1's initial state and observes it through the noise."""
        state_key, noise_key = jax.random.split(key)
        obs, state = super().reset_env(state_key, params)
        return self._add_noise(noise_key, obs), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: pendulum.EnvState,
        action: Float[ArrayLike, "1"] | Float[ArrayLike, ""],
        params: pendulum.EnvParams,
    ) -> tuple[
        Float[Array, "2"],
        pendulum.EnvState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """One step of Pendulum-v1's dynamics, observed through the noise."""
        step_key, noise_key = jax.random.split(key)
        obs, state, reward, terminated, info = super().step_env(
            step_key, state, action, params
        )
        return self._add_noise(noise_key, obs), state, reward, terminated, info


class NoisyStatelessPendulumEasy(NoisyStatelessPendulum):
    """POPGym's Noisy Stateless Pendulum Easy: noise `sigma = 0.1`, 200 steps."""

    def __init__(self):
        super().__init__(noise_sigma=0.1, max_steps_in_episode=200)


class NoisyStatelessPendulumMedium(NoisyStatelessPendulum):
    """POPGym's Noisy Stateless Pendulum Medium: noise `sigma = 0.2`, 200 steps."""

    def __init__(self):
        super().__init__(noise_sigma=0.2, max_steps_in_episode=200)


class NoisyStatelessPendulumHard(NoisyStatelessPendulum):
    """POPGym's Noisy Stateless Pendulum Hard: noise `sigma = 0.3`, 200 steps."""

    def __init__(self):
        super().__init__(noise_sigma=0.3, max_steps_in_episode=200)
