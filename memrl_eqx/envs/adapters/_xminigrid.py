from typing import Any

import jax.numpy as jnp
from gymnax.environments import spaces
from jaxtyping import Array, Int, PRNGKeyArray

from .._adapter import AbstractAdapter


class XMinigridAdapter(AbstractAdapter):
    """An XLand-MiniGrid environment as a gymnax `Environment`.

    `params` are XLand-MiniGrid's own `EnvParams` (view size, time limit, and for
    meta-RL the ruleset), so a ruleset is a traced input and `vmap` over rulesets
    works. Observations are the agent's egocentric view,
    `UInt8[Array, "view view 2"]` (tile and colour ids), actions
    `Discrete(num_actions)`. Reaching the goal terminates; `params.max_steps`
    truncates.

    **Arguments:**

    - `env`, `env_params`: the environment and its default params, as
        `xminigrid.make(name)` returns them; `env_params` become the adapter's
        `default_params`.
    - `name`: its XLand-MiniGrid id, e.g. `"MiniGrid-Empty-5x5"`; what the
        adapter's `name` property returns.
    """

    env: Any
    env_params: Any
    env_name: str

    def __init__(self, env: Any, env_params: Any, name: str):
        super().__init__()
        self.env = env
        self.env_params = env_params
        self.env_name = name

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def default_params(self) -> Any:
        """The XLand-MiniGrid parameters this adapter was made with."""
        return self.env_params

    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[Array, Any]:
        timestep = self.env.reset(params, key)
        return timestep.observation, timestep

    def _step(
        self, key: PRNGKeyArray, env_state: Any, action: Int[Array, ""], params: Any
    ) -> tuple[Array, Any, Array, Array, Array, dict[str, Any]]:
        del key
        timestep = self.env.step(params, env_state, jnp.asarray(action, jnp.int32))
        last = timestep.step_type == 2
        terminated = last & (timestep.discount == 0.0)
        return timestep.observation, timestep, timestep.reward, terminated, last, {}

    @property
    def num_actions(self) -> int:
        return int(self.env.num_actions(self.env_params))

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 255, (view, view, 2), uint8)`."""
        params = self.env_params if params is None else params
        shape = tuple(self.env.observation_shape(params))
        return spaces.Box(0, 255, shape, jnp.uint8)


def make_xminigrid(name: str, **kwargs: Any) -> XMinigridAdapter:
    import xminigrid

    env, env_params = xminigrid.make(name, **kwargs)
    return XMinigridAdapter(env, env_params, name)


def xminigrid_names() -> list[str]:
    import xminigrid

    return list(xminigrid.registered_environments())
