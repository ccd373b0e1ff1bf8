from typing import Any

import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, Int, PRNGKeyArray

from .._adapter import AbstractAdapter, to_gymnax_space


class NavixAdapter(AbstractAdapter):
    """A navix environment as a gymnax `Environment`.

    Observations and actions are navix's (by default a symbolic egocentric grid,
    `UInt8[Array, "h w 3"]`, and `Discrete(len(action_set))`). navix's step type
    tells a termination (`2`) from its time limit (`1`, after `max_steps`, which
    is fixed at construction: `params` are gymnax's `EnvParams` and only state it).

    **Arguments:**

    - `env`: the navix environment, as `navix.make(name)` returns it.
    - `name`: its navix id, e.g. `"Navix-Empty-5x5-v0"`; what the adapter's
        `name` property returns.
    """

    env: Any
    env_name: str
    _action_space: spaces.Space
    _observation_space: spaces.Space

    def __init__(self, env: Any, name: str):
        super().__init__()
        self.env = env
        self.env_name = name
        # navix computes its spaces' sizes as arrays: convert them once, here.
        self._action_space = to_gymnax_space(env.action_space)
        self._observation_space = to_gymnax_space(env.observation_space)

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters whose time limit is the navix environment's `max_steps`."""
        return environment.EnvParams(max_steps_in_episode=int(self.env.max_steps))

    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[Array, Any]:
        del params
        timestep = self.env.reset(key)
        return timestep.observation, timestep

    def _step(
        self, key: PRNGKeyArray, env_state: Any, action: Int[Array, ""], params: Any
    ) -> tuple[Array, Any, Array, Array, Array, dict[str, Any]]:
        del key, params
        # The stored timestep never ends an episode (the auto-reset replaces it),
        # so navix's own lazy reset never fires here.
        timestep = self.env.step(env_state, jnp.asarray(action, jnp.int32))
        terminated = timestep.step_type == 2
        truncated = timestep.step_type == 1
        return (
            timestep.observation,
            timestep,
            timestep.reward,
            terminated,
            truncated,
            {},
        )

    @property
    def num_actions(self) -> int:
        return len(self.env.action_set)

    def action_space(self, params: Any = None) -> spaces.Space:
        return self._action_space

    def observation_space(self, params: Any = None) -> spaces.Space:
        return self._observation_space


def make_navix(name: str, **kwargs: Any) -> NavixAdapter:
    import navix

    return NavixAdapter(navix.make(name, **kwargs), name)


def navix_names() -> list[str]:
    import navix

    return list(navix.registry())
