from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from gymnax.environments import spaces
from jaxtyping import Array, Bool, PRNGKeyArray

from .._adapter import AbstractAdapter, to_gymnax_space


def _gymnax_time_limit(state: Any, params: Any) -> Bool[Array, ""]:
    # gymnax's convention: a `time` counter in the state, a limit in the params.
    time = getattr(state, "time", None)
    limit = getattr(params, "max_steps_in_episode", None)
    if time is None or limit is None:
        return jnp.array(False)
    return time >= limit


class GymnaxLikeAdapter(AbstractAdapter):
    """An environment with gymnax's older interface (`reset_env(key, params)`,
    `step_env(key, state, action, params) -> (obs, state, reward, done, info)`,
    one `done` flag), such as Craftax's or POPGym Arcade's, as a gymnax 1.0
    `Environment` that keeps termination and truncation apart.

    `params` are the backend's own. A `done` step is a truncation where
    `is_time_limit(state, params)` holds for the state it reached, else a
    termination (so a death on the very last allowed step counts as a
    truncation). The backend's `info` is returned as it is.

    **Arguments:**

    - `env`: the backend environment, without its own auto-reset.
    - `name`: what the adapter's `name` property returns, e.g. the
        environment's id.
    - `is_time_limit`: `(state, params) -> bool`, whether `state` is at the time
        limit. The default reads gymnax's `state.time >=
        params.max_steps_in_episode`, and is `False` without them.
    """

    env: Any
    env_name: str
    is_time_limit: Callable[[Any, Any], Bool[Array, ""]]

    def __init__(
        self,
        env: Any,
        name: str,
        is_time_limit: Callable[[Any, Any], Bool[Array, ""]] = _gymnax_time_limit,
    ):
        super().__init__()
        self.env = env
        self.env_name = name
        self.is_time_limit = is_time_limit

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def default_params(self) -> Any:
        """The wrapped environment's default parameters."""
        return self.env.default_params

    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[Array, Any]:
        return self.env.reset_env(key, params)

    def _step(
        self, key: PRNGKeyArray, env_state: Any, action: Any, params: Any
    ) -> tuple[Array, Any, Array, Array, Array, dict[str, Any]]:
        obs, state, reward, done, info = self.env.step_env(
            key, env_state, action, params
        )
        done = jnp.asarray(done, bool)
        truncated = done & self.is_time_limit(state, params)
        return obs, state, reward, done & ~truncated, truncated, dict(info)

    @property
    def num_actions(self) -> int:
        return int(self.action_space().n)

    def action_space(self, params: Any = None) -> spaces.Space:
        params = self.default_params if params is None else params
        return to_gymnax_space(self.env.action_space(params))

    def observation_space(self, params: Any = None) -> spaces.Space:
        params = self.default_params if params is None else params
        return to_gymnax_space(self.env.observation_space(params))


_CRAFTAX = (
    "Craftax-Symbolic-v1",
    "Craftax-Pixels-v1",
    "Craftax-Classic-Symbolic-v1",
    "Craftax-Classic-Pixels-v1",
)


def _craftax_time_limit(state: Any, params: Any) -> Bool[Array, ""]:
    return state.timestep >= params.max_timesteps


def make_craftax(name: str) -> GymnaxLikeAdapter:
    from craftax.craftax_env import make_craftax_env_from_name

    env = make_craftax_env_from_name(name, auto_reset=False)
    return GymnaxLikeAdapter(env, name, _craftax_time_limit)


def craftax_names() -> list[str]:
    return list(_CRAFTAX)


def make_popgym_arcade(name: str, **kwargs: Any) -> GymnaxLikeAdapter:
    import popgym_arcade

    env, _ = popgym_arcade.make(name, **kwargs)
    return GymnaxLikeAdapter(env, name)


def popgym_arcade_names() -> list[str]:
    from popgym_arcade.registration import REGISTERED_ENVIRONMENTS

    return list(REGISTERED_ENVIRONMENTS)
