import functools as ft
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments.environment import Environment
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._arguments import check_finite
from ._wrapper import AbstractWrapper


class ScaleReward(AbstractWrapper):
    """Multiplies every reward by a constant.

    `step` returns `reward * scale` as float32 and everything else as the wrapped
    environment returns it (the state is the wrapped environment's). Wrap
    [`memrl_eqx.envs.EpisodeStatistics`][] inside it to record unscaled
    returns, outside it to record scaled ones.

    **Arguments:**

    - `env`: the environment to wrap.
    - `scale`: the factor, a finite number.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import make, ScaleReward

    env, params = make("gymnax::CartPole-v1")  # +1 per step
    env = ScaleReward(env, 0.01)
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, reward, *_ = env.step(jax.random.key(1), state, 0, params)
    assert jax.numpy.isclose(reward, 0.01)
    ```
    """

    scale: float = eqx.field(static=True)

    def __init__(self, env: Environment, scale: float):
        super().__init__(env)
        self.scale = check_finite(scale, "scale")

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKeyArray, state: PyTree, action: Any, params: Any = None
    ) -> tuple[PyTree, PyTree, Float[Array, ""], Array, Array, dict[str, Any]]:
        obs, state, reward, terminated, truncated, info = self.env.step(
            key, state, action, params
        )
        reward = jnp.asarray(reward).astype(jnp.float32) * jnp.float32(self.scale)
        return obs, state, reward, terminated, truncated, info
