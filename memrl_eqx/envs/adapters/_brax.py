from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._adapter import AbstractAdapter, backend_rules


def _box(size: Any) -> spaces.Space:
    # brax and MJX give an observation size as an int, a shape, or a dict of them.
    if isinstance(size, dict):
        return spaces.Dict({k: _box(v) for k, v in size.items()})
    shape = (size,) if isinstance(size, int) else tuple(size)
    return spaces.Box(-jnp.inf, jnp.inf, shape, jnp.float32)


class BraxAdapter(AbstractAdapter):
    """A brax `Env` (or a MuJoCo Playground `MjxEnv`, which has the same
    interface) as a gymnax `Environment`.

    Observations are the backend's (`Float[Array, "observation_size"]`, or a dict of
    arrays for some Playground tasks), actions `Float[Array, "action_size"]` in
    `Box(-1, 1)`. brax's `done` is a termination; the time limit
    `params.max_steps_in_episode` (default `episode_length`, 1000 as in brax's
    training wrappers) truncates. The backend's `metrics` are returned in `info`.

    **Arguments:**

    - `env`: a brax `Env` or MuJoCo Playground `MjxEnv`, not already wrapped in
        an auto-reset or episode wrapper.
    - `episode_length`: the default time limit, in steps (keyword only;
        default 1000).
    - `name`: what the adapter's `name` property returns, e.g. the
        environment's id (keyword only; default `"brax"`).
    """

    env: Any
    episode_length: int
    env_name: str
    _state_treedef: Any
    _observation_space: spaces.Space | None

    def __init__(self, env: Any, *, episode_length: int = 1000, name: str = "brax"):
        super().__init__()
        if not isinstance(episode_length, int) or episode_length < 1:
            raise ValueError(
                f"episode_length must be a positive int, got {episode_length!r}."
            )
        self.env = env
        self.episode_length = episode_length
        self.env_name = name
        self._state_treedef = None
        self._observation_space = None

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters whose time limit is the adapter's `episode_length`."""
        return environment.EnvParams(max_steps_in_episode=self.episode_length)

    def _time_limit(self, params: environment.EnvParams) -> Any:
        return params.max_steps_in_episode

    # The backend's state is stored as its list of leaves: MJX's `Data` checks
    # its leaves' shapes when rebuilt, which fails once they carry a batch axis
    # (as they do outside a `vmap`, and in gymnax's auto-reset select).
    def _treedef(self) -> Any:
        if self._state_treedef is None:
            state = jax.eval_shape(self.env.reset, jax.random.key(0))
            self._state_treedef = jax.tree.structure(state)
        return self._state_treedef

    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[PyTree, list[Array]]:
        del params
        state = self.env.reset(key)
        return state.obs, jax.tree.leaves(state)

    def _step(
        self,
        key: PRNGKeyArray,
        env_state: list[Array],
        action: Float[Array, " a"],
        params: Any,
    ) -> tuple[PyTree, list[Array], Array, Array, Array, dict[str, Any]]:
        del key, params
        state = jax.tree.unflatten(self._treedef(), env_state)
        state = self.env.step(state, jnp.asarray(action, jnp.float32))
        info = dict(state.metrics)
        terminated = state.done > 0.5
        truncated = jnp.array(False)
        return (
            state.obs,
            jax.tree.leaves(state),
            state.reward,
            terminated,
            truncated,
            info,
        )

    @property
    def num_actions(self) -> int:
        return self.env.action_size

    def action_space(self, params: Any = None) -> spaces.Box:
        """`Box(-1, 1, (action_size,), float32)`."""
        return spaces.Box(-1.0, 1.0, (self.env.action_size,), jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Space:
        """An unbounded float32 `Box` of the backend's observation size (a `Dict`
        of them for dict observations)."""
        if self._observation_space is None:
            # MuJoCo Playground finds the size by tracing `reset`.
            with backend_rules():
                self._observation_space = _box(self.env.observation_size)
        return self._observation_space


def make_brax(name: str, *, episode_length: int = 1000, **kwargs: Any) -> BraxAdapter:
    import brax.envs

    return BraxAdapter(
        brax.envs.get_environment(name, **kwargs),
        episode_length=episode_length,
        name=name,
    )


def brax_names() -> list[str]:
    import brax.envs

    return sorted(brax.envs._envs)


def make_mujoco(
    name: str, *, episode_length: int | None = None, **config_overrides: Any
) -> BraxAdapter:
    from mujoco_playground import registry

    # MJX's pure-JAX implementation: Playground's default, Warp, is a GPU kernel
    # library whose calls do not batch under `vmap` on the CPU.
    config_overrides = {"impl": "jax", **config_overrides}
    env = registry.load(name, config_overrides=config_overrides)
    if episode_length is None:
        episode_length = int(registry.get_default_config(name).episode_length)
    return BraxAdapter(env, episode_length=episode_length, name=name)


def mujoco_names() -> list[str]:
    from mujoco_playground import registry

    return list(registry.ALL_ENVS)
