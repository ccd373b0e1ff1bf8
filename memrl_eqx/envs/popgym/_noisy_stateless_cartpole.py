from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments.classic_control import cartpole
from jaxtyping import Array, ArrayLike, Bool, Float, Integer, PRNGKeyArray

from ._stateless_cartpole import StatelessCartPole
from ._validation import _check_noise_sigma


class NoisyStatelessCartPole(StatelessCartPole):
    """POPGym's Noisy Stateless CartPole: Stateless CartPole whose observations are
    also corrupted by Gaussian noise.

    Everything but the observation is [`memrl_eqx.envs.popgym.StatelessCartPole`][]:
    gymnax's CartPole dynamics, initial states, actions (`0` pushes left, `1`
    right) and termination (the pole past 12 degrees or the cart past 2.4), a
    reward of `1 / max_steps_in_episode` per step (episode return
    `length / max_steps_in_episode`, in `(0, 1]`), and a truncation at the time
    limit.

    The observation is `[x, theta] + noise`, `Float[Array, "2"]`, where each
    coordinate of `noise` is drawn independently from `Normal(0, noise_sigma^2)`
    at every step and at reset, and the sum is clipped to the observation space
    `Box(-[4.8, 24 deg], [4.8, 24 deg])`. The task tests memory twice over: the
    velocities must be inferred from past positions, and the noise averaged out
    over several of them.

    The noise is drawn from the key gymnax passes to `reset_env` and `step_env`,
    so a rollout is a deterministic function of its key.

    **Arguments:**

    - `noise_sigma`: the standard deviation of the noise added to each
        observed coordinate (POPGym's Easy/Medium/Hard use 0.1/0.2/0.3). Must
        be finite and non-negative.
    - `max_steps_in_episode`: the time limit, which also sets the reward scale
        (all of POPGym's presets use 200).

    All keyword only; the defaults are `noise_sigma=0.1`, `max_steps_in_episode=200`.
    """

    noise_sigma: float

    def __init__(self, *, noise_sigma: float = 0.1, max_steps_in_episode: int = 200):
        super().__init__(max_steps_in_episode=max_steps_in_episode)
        self.noise_sigma = _check_noise_sigma(noise_sigma)

    def _add_noise(
        self, key: PRNGKeyArray, obs: Float[Array, "2"], params: cartpole.EnvParams
    ) -> Float[Array, "2"]:
        noise = self.noise_sigma * jax.random.normal(key, (2,), dtype=jnp.float32)
        space = self.observation_space(params)
        return jnp.clip(obs + noise, space.low, space.high)

    def reset_env(
        self, key: PRNGKeyArray, params: cartpole.EnvParams
    ) -> tuple[Float[Array, "2"], cartpole.EnvState]:
        """Draws CartPole's initial state and observes it through the noise."""
        state_key, noise_key = jax.random.split(key)
        obs, state = super().reset_env(state_key, params)
        return self._add_noise(noise_key, obs, params), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: cartpole.EnvState,
        action: Integer[ArrayLike, ""],
        params: cartpole.EnvParams,
    ) -> tuple[
        Float[Array, "2"],
        cartpole.EnvState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """One step of CartPole's dynamics, observed through the noise."""
        step_key, noise_key = jax.random.split(key)
        obs, state, reward, terminated, info = super().step_env(
            step_key, state, action, params
        )
        return self._add_noise(noise_key, obs, params), state, reward, terminated, info


class NoisyStatelessCartPoleEasy(NoisyStatelessCartPole):
    """POPGym's Noisy Stateless CartPole Easy: noise `sigma = 0.1`, at most 200
    steps."""

    def __init__(self):
        super().__init__(noise_sigma=0.1, max_steps_in_episode=200)


class NoisyStatelessCartPoleMedium(NoisyStatelessCartPole):
    """POPGym's Noisy Stateless CartPole Medium: noise `sigma = 0.2`, at most 200
    steps."""

    def __init__(self):
        super().__init__(noise_sigma=0.2, max_steps_in_episode=200)


class NoisyStatelessCartPoleHard(NoisyStatelessCartPole):
    """POPGym's Noisy Stateless CartPole Hard: noise `sigma = 0.3`, at most 200
    steps."""

    def __init__(self):
        super().__init__(noise_sigma=0.3, max_steps_in_episode=200)
