from typing import Any

import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.classic_control import cartpole
from jaxtyping import Array, Float, PRNGKeyArray

from ._stateless_cartpole import StatelessCartPole


class VelocityOnlyCartPole(StatelessCartPole):
    """POPGym's Velocity Only CartPole: CartPole-v1 with the positions hidden.

    Everything but the observation is [`memrl_eqx.envs.popgym.StatelessCartPole`][]:
    gymnax's CartPole dynamics, initial states (uniform in `[-0.05, 0.05]^4`),
    actions (`0` pushes left, `1` right) and termination (the pole past 12 degrees
    or the cart past 2.4), a reward of `1 / max_steps_in_episode` per step
    (episode return `length / max_steps_in_episode`, in `(0, 1]`), and a
    truncation at the time limit.

    The observation after every step is the velocities `[x_dot, theta_dot]`,
    `Float[Array, "2"]`, in `Box(-inf, inf)` as POPGym's; the cart's position and
    the pole's angle, which decide when the episode ends, must be integrated from
    them in memory.

    At reset the observation is `[x, theta]` by default, as in POPGym 1.0.7,
    whose reset keeps its Position Only CartPole's observation; then the initial
    position and angle are seen once, and the velocities from the first step on.
    `velocities_at_reset=True` observes `[x_dot, theta_dot]` at reset too, which
    **differs from POPGym 1.0.7**.

    **Arguments:**

    - `max_steps_in_episode`: the time limit, which also sets the reward scale
        (POPGym's Easy/Medium/Hard use 200/400/600). At least 1.
    - `velocities_at_reset`: whether the reset observation is the velocities
        (`True`) or, as POPGym's, the position and angle (`False`).

    Keyword only; the defaults are `max_steps_in_episode=200`,
    `velocities_at_reset=False`.
    """

    velocities_at_reset: bool

    def __init__(
        self, *, max_steps_in_episode: int = 200, velocities_at_reset: bool = False
    ):
        super().__init__(max_steps_in_episode=max_steps_in_episode)
        if not isinstance(velocities_at_reset, bool):
            raise TypeError(
                f"velocities_at_reset must be a bool, got {velocities_at_reset!r}."
            )
        self.velocities_at_reset = velocities_at_reset

    def get_obs(
        self, state: cartpole.EnvState, params: Any = None, key: Any = None
    ) -> Float[Array, "2"]:
        """The observation `[x_dot, theta_dot]` of a state."""
        del params, key
        return jnp.stack([state.x_dot, state.theta_dot]).astype(jnp.float32)

    def reset_env(
        self, key: PRNGKeyArray, params: cartpole.EnvParams
    ) -> tuple[Float[Array, "2"], cartpole.EnvState]:
        """Draws CartPole's initial state; observes `[x, theta]` (POPGym's), or
        the velocities with `velocities_at_reset=True`."""
        obs, state = super().reset_env(key, params)
        if not self.velocities_at_reset:
            obs = jnp.stack([state.x, state.theta]).astype(jnp.float32)
        return obs, state

    def observation_space(self, params: cartpole.EnvParams) -> spaces.Box:
        """`Box(-inf, inf, (2,), float32)`, POPGym's."""
        return spaces.Box(-jnp.inf, jnp.inf, (2,), dtype=jnp.float32)


class VelocityOnlyCartPoleEasy(VelocityOnlyCartPole):
    """POPGym's Velocity Only CartPole Easy: at most 200 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=200)


class VelocityOnlyCartPoleMedium(VelocityOnlyCartPole):
    """POPGym's Velocity Only CartPole Medium: at most 400 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=400)


class VelocityOnlyCartPoleHard(VelocityOnlyCartPole):
    """POPGym's Velocity Only CartPole Hard: at most 600 steps."""

    def __init__(self):
        super().__init__(max_steps_in_episode=600)
