import abc
import functools as ft
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, PRNGKeyArray, PyTree


class AbstractWrapper(eqx.Module, Environment):
    """The base of every environment wrapper: a gymnax `Environment` around another.

    A wrapper holds the environment it wraps in its field `env` and delegates to it
    everything it does not change: `default_params`, `name`, `num_actions`, the
    action, observation and state spaces, `reset` and `step`, and any other
    attribute (through `__getattr__`, so e.g. a POPGym task's `k` stays readable
    through any number of wrappers). A subclass overrides only what it changes.

    Wrappers are `equinox.Module`s and so have **value equality**: two wrappers
    are `==` and hash equal when their types, wrapped environments and parameters
    (their other fields, which must be hashable Python values) are equal. The
    environment is a static argument wherever it is jitted (`reset` and `step`
    here, and every algorithm's training loop), so building a fresh wrapper around
    the same environment, as algorithms do, does not compile again.

    Subclasses must keep every field hashable (tuples and floats, not arrays), and
    must not change the keys they pass to the wrapped environment: a wrapper that
    needs randomness derives it from the step key with `jax.random.fold_in`, so the
    wrapped environment's trajectory is the same with or without the wrapper.

    **Arguments:**

    - `env`: the gymnax environment to wrap; its `step` must auto-reset, as
        gymnax's `Environment.step` does.

    **Example:**

    ```python
    from memrl_eqx.envs import AbstractWrapper, make


    class Identity(AbstractWrapper):
        pass


    env, params = make("gymnax::CartPole-v1")
    assert Identity(env) == Identity(env)
    assert Identity(env).num_actions == env.num_actions
    ```
    """

    env: Environment

    def __init__(self, env: Environment):
        if not isinstance(env, Environment):
            raise ValueError(
                f"env must be a gymnax Environment, got {type(env).__name__}."
            )
        self.env = env

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the wrapper lacks. `env` itself and special
        # names are not delegated, so a half-built wrapper (e.g. while being copied
        # or unpickled) raises AttributeError here rather than recursing.
        if name == "env" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def default_params(self) -> Any:
        """The wrapped environment's default parameters."""
        return self.env.default_params

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params: Any = None) -> Any:
        return self.env.action_space(params)

    def observation_space(self, params: Any = None) -> Any:
        return self.env.observation_space(params)

    def state_space(self, params: Any = None) -> Any:
        return self.env.state_space(params)

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKeyArray, params: Any = None) -> tuple[PyTree, PyTree]:
        return self.env.reset(key, params)

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKeyArray, state: PyTree, action: Any, params: Any = None
    ) -> tuple[PyTree, PyTree, Array, Array, Array, dict[str, Any]]:
        return self.env.step(key, state, action, params)


def _done(terminated: Any, truncated: Any) -> Bool[Array, ""]:
    return jnp.asarray(terminated, dtype=bool) | jnp.asarray(truncated, dtype=bool)


class AbstractObservationWrapper(AbstractWrapper):
    """The base of every wrapper that changes observations.

    A subclass implements one hook, `observation`, and this class applies it to
    **both** the observation that `reset` and `step` return and, after a `step`,
    to `info["final_observation"]` (the last observation of an episode that ended
    at that step, before the auto-reset replaced it). Where no episode ended the
    two are transformed alike, so `info["final_observation"]` stays equal to the
    returned observation there, as it is for a gymnax environment.

    A wrapper that keeps state of its own (previous action, running statistics)
    also overrides `init_state`, `update_state` and `inner_state`. Its state is
    then a module with a field `env_state` holding the wrapped environment's
    state; a stateless wrapper's state is the wrapped environment's state itself.

    **Arguments:** `env`, the gymnax environment to wrap (see
    [`memrl_eqx.envs.AbstractWrapper`][]); a subclass may take more.

    **Example:** a wrapper that scales observations.

    ```python
    import equinox as eqx
    import jax
    from memrl_eqx.envs import AbstractObservationWrapper, make


    class Scale(AbstractObservationWrapper):
        factor: float = eqx.field(static=True)

        def __init__(self, env, factor):
            super().__init__(env)
            self.factor = factor

        def observation(self, key, obs, state, first):
            return obs * self.factor


    env, params = make("gymnax::CartPole-v1")
    obs, state = env.reset(jax.random.key(0), params)
    scaled, _ = Scale(env, 10.0).reset(jax.random.key(0), params)
    assert jax.numpy.allclose(scaled, 10.0 * obs)
    ```
    """

    @abc.abstractmethod
    def observation(
        self, key: PRNGKeyArray, obs: PyTree, state: PyTree, first: Bool[Array, ""]
    ) -> PyTree:
        """Transforms one observation.

        **Arguments:**

        - `key`: the key given to `reset` or `step`, which the wrapped environment
            also uses: derive a fresh one (`jax.random.fold_in`) before drawing.
        - `obs`: the wrapped environment's observation.
        - `state`: this wrapper's state at that observation: after `reset`, the new
            state; after `step`, the new state for the returned observation and
            the first element `update_state` returned (the state before the
            auto-reset) for `info["final_observation"]`.
        - `first`: whether `obs` is the first observation of an episode (true
            after `reset` and for the returned observation of a step that ended an
            episode, false for `info["final_observation"]`).
        """

    def init_state(
        self, key: PRNGKeyArray, obs: PyTree, env_state: PyTree, params: Any
    ) -> PyTree:
        """This wrapper's state after `reset`, from the wrapped environment's
        (untransformed) first observation and state. Stateless: `env_state`."""
        del key, obs, params
        return env_state

    def update_state(
        self,
        key: PRNGKeyArray,
        state: PyTree,
        env_state: PyTree,
        action: Any,
        obs: PyTree,
        reward: Array,
        done: Bool[Array, ""],
        params: Any,
    ) -> tuple[PyTree, PyTree]:
        """This wrapper's states after `step`: `(final_state, next_state)`, the
        state for `info["final_observation"]` (before the auto-reset) and the new
        state, from the old `state`, the wrapped environment's new state, the
        action, its returned (untransformed) observation, reward, and whether an
        episode ended. Stateless: `(env_state, env_state)`."""
        del key, state, action, obs, reward, done, params
        return env_state, env_state

    def inner_state(self, state: PyTree) -> PyTree:
        """The wrapped environment's state inside this wrapper's. Stateless:
        `state` itself."""
        return state

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKeyArray, params: Any = None) -> tuple[PyTree, PyTree]:
        obs, env_state = self.env.reset(key, params)
        state = self.init_state(key, obs, env_state, params)
        return self.observation(key, obs, state, jnp.array(True)), state

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKeyArray, state: PyTree, action: Any, params: Any = None
    ) -> tuple[PyTree, PyTree, Array, Array, Array, dict[str, Any]]:
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, self.inner_state(state), action, params
        )
        done = _done(terminated, truncated)
        final_state, state = self.update_state(
            key, state, env_state, action, obs, reward, done, params
        )
        new_obs = self.observation(key, obs, state, done)
        if "final_observation" in info:
            final = self.observation(
                key, info["final_observation"], final_state, jnp.array(False)
            )
            info = {**info, "final_observation": final}
        return new_obs, state, reward, terminated, truncated, info


class AbstractActionWrapper(AbstractWrapper):
    """The base of every wrapper that changes actions: a subclass implements
    `action`, which maps the agent's action to the wrapped environment's, and, if
    the space the agent acts in changes, `action_space`.

    **Arguments:** `env`, the gymnax environment to wrap (see
    [`memrl_eqx.envs.AbstractWrapper`][]); a subclass may take more.
    """

    @abc.abstractmethod
    def action(self, action: Any, params: Any) -> Any:
        """The wrapped environment's action for the agent's `action`, under the
        env params `params` (never `None`: the default params stand in)."""

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKeyArray, state: PyTree, action: Any, params: Any = None
    ) -> tuple[PyTree, PyTree, Array, Array, Array, dict[str, Any]]:
        env_params = self.env.default_params if params is None else params
        return self.env.step(key, state, self.action(action, env_params), params)
