from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.classic_control import cartpole
from jaxtyping import Array, ArrayLike, Bool, Float, Integer, PRNGKeyArray

from ._validation import _at_least


class StatelessCartPole(cartpole.CartPole):
    """POPGym's Stateless CartPole: CartPole-v1 with the velocities hidden.

    The dynamics, the initial state (uniform in `[-0.05, 0.05]^4`), the actions
    (`0` pushes left, `1` right) and the termination (`|x| > 2.4` or
    `|theta| > 12 degrees`) are gymnax's `CartPole`, whose state and params this
    environment shares. Only the observation and the reward change:

    - the observation is `[x, theta]`, `Float[Array, "2"]`, in
        `Box(-[4.8, 24 deg], [4.8, 24 deg])`; `x_dot` and `theta_dot` must be
        inferred from memory;
    - every step is rewarded `1 / max_steps_in_episode`, so the episode return is
        `length / max_steps_in_episode`, in `(0, 1]`, and `1` exactly when the pole
        is kept up until the time limit.

    Reaching `params.max_steps_in_episode` steps is a *truncation* (the agent has
    won, the state is not terminal); the pole falling or the cart leaving the
    track is a termination.

    **Arguments:**

    - `max_steps_in_episode`: the time limit, which also sets the reward scale
        (POPGym's Easy/Medium/Hard use 200/400/600).

    Keyword only; the default is `max_steps_in_episode=200`.
    """

    def __init__(self, *, max_steps_in_episode: int = 200):
        super().__init__()
        max_steps_in_episode = _at_least(
            "max_steps_in_episode", max_steps_in_episode, 1
        )
        self.max_steps_in_episode = max_steps_in_episode
        self.obs_shape = (2,)

    @property
    def default_params(self) -> cartpole.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return cartpole.EnvParams(max_steps_in_episode=self.max_steps_in_episode)

    def get_obs(
        self, state: cartpole.EnvState, params: Any = None, key: Any = None
    ) -> Float[Array, "2"]:
        """The observation `[x, theta]` of a state."""
        del params, key
        return jnp.stack([state.x, state.theta]).astype(jnp.float32)

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
        """One step of CartPole's dynamics, observed without the velocities."""
        # gymnax's CartPole mixes Python floats, bools and the integer action, which
        # strict dtype promotion rejects; its arithmetic is float32 either way.
        with jax.numpy_dtype_promotion("standard"):
            obs, state, _, terminated, info = super().step_env(
                key, state, jnp.asarray(action).astype(jnp.int32), params
            )
        max_steps = jnp.asarray(params.max_steps_in_episode).astype(jnp.float32)
        reward = jnp.reciprocal(max_steps)
        return obs, state, reward, jnp.asarray(terminated), info

    @property
    def name(self) -> str:
        return type(self).__name__

    def observation_space(self, params: cartpole.EnvParams) -> spaces.Box:
        """`Box(-high, high, (2,), float32)` with `high = [2 * x_threshold,
        2 * theta_threshold_radians]`."""
        high = jnp.array(
            [params.x_threshold * 2, params.theta_threshold_radians * 2],
            dtype=jnp.float32,
        )
        return spaces.Box(-high, high, (2,), dtype=jnp.float32)


class StatelessCartPoleEasy(StatelessCartPole):
    """POPGym's Stateless CartPole Easy: at most 200 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=200)


class StatelessCartPoleMedium(StatelessCartPole):
    """POPGym's Stateless CartPole Medium: at most 400 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=400)


class StatelessCartPoleHard(StatelessCartPole):
    """POPGym's Stateless CartPole Hard: at most 600 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=600)
