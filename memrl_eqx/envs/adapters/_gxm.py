from typing import Any

import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._adapter import AbstractAdapter, to_gymnax_space


class GxmAdapter(AbstractAdapter):
    """A gxm environment (ids `"Library/Name"`, e.g. `"Gymnax/CartPole-v1"`) as a
    gymnax `Environment`.

    gxm keeps termination and truncation apart and gives the true last
    observation at a truncation, which is what `info["final_observation"]` holds
    here. gxm auto-resets on its own; the fresh state it starts is replaced by
    this adapter's reset, so episodes start from the key gymnax's auto-reset
    draws. `params` are gymnax's `EnvParams` (gxm has none).

    **Arguments:**

    - `env`: the gxm environment, as `gxm.make(name)` returns it.
    - `name`: its gxm id, `"Library/Name"`; what the adapter's `name` property
        returns.
    """

    env: Any
    env_name: str

    def __init__(self, env: Any, name: str):
        super().__init__()
        self.env = env
        self.env_name = name

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax's default parameters (the backend keeps its own time limit)."""
        return environment.EnvParams()

    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[PyTree, Any]:
        del params
        state, timestep = self.env.init(key)
        return timestep.next_obs, state

    def _step(
        self, key: PRNGKeyArray, env_state: Any, action: Array, params: Any
    ) -> tuple[PyTree, Any, Array, Array, Array, dict[str, Any]]:
        del params
        state, timestep = self.env.step(key, env_state, action)
        return (
            timestep.true_next_obs,
            state,
            timestep.reward,
            jnp.asarray(timestep.terminated, bool),
            jnp.asarray(timestep.truncated, bool),
            dict(timestep.info),
        )

    @property
    def num_actions(self) -> int:
        return int(self.action_space().n)

    def action_space(self, params: Any = None) -> spaces.Space:
        return to_gymnax_space(self.env.action_space)

    def observation_space(self, params: Any = None) -> spaces.Space:
        return to_gymnax_space(self.env.observation_space)


def make_gxm(name: str, **kwargs: Any) -> GxmAdapter:
    library, separator, env_name = name.partition("/")
    if not (separator and library and env_name):
        raise ValueError(
            f"gxm ids are 'Library/Name', e.g. 'gxm::Navix/Navix-Empty-5x5-v0'; "
            f"got {name!r}."
        )
    import gxm

    return GxmAdapter(gxm.make(name, **kwargs), name)
