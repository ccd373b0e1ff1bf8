import abc
import contextlib
from collections.abc import Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces
from jaxtyping import Array, Bool, Int, PRNGKeyArray, PyTree


@contextlib.contextmanager
def backend_rules() -> Iterator[None]:
    # Backends are third-party code, written for JAX's default promotion rules.
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


class AdapterState(eqx.Module):
    """The state of an [`memrl_eqx.envs.adapters.AbstractAdapter`][].

    **Fields:**

    - `env_state`: the backend's own state (a brax `State`, a navix `Timestep`, ...).
    - `time`: the number of steps taken in the episode, int32 scalar.
    - `truncated`: whether the last step hit a time limit, bool scalar.
    """

    env_state: PyTree
    time: Int[Array, ""]
    truncated: Bool[Array, ""]


class AbstractAdapter(environment.Environment[AdapterState, Any]):
    """Presents another suite's environment as a gymnax `Environment`.

    A subclass says how to reset and step the backend once, without auto-reset:

    - `_reset(key, params) -> (obs, env_state)`;
    - `_step(key, env_state, action, params) -> (obs, env_state, reward,
        terminated, truncated, info)`, keeping a time limit (`truncated`) apart from
        the end of the task (`terminated`);

    and gymnax's `Environment.step` does the rest: the auto-reset, and
    `info["final_observation"]`, the observation before it (what targets bootstrap
    from at a time limit). A subclass may also impose its own time limit through
    `_time_limit(params)` (the default is none); `truncated` is never set on a step
    that also terminates. Backends run under JAX's default dtype and rank
    promotion, whatever the caller's settings.
    """

    @abc.abstractmethod
    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[PyTree, PyTree]:
        pass

    @abc.abstractmethod
    def _step(
        self, key: PRNGKeyArray, env_state: PyTree, action: Any, params: Any
    ) -> tuple[PyTree, PyTree, Array, Array, Array, dict[str, Any]]:
        pass

    def _time_limit(self, params: Any) -> Int[Array, ""] | int | None:
        """The number of steps after which an episode is truncated, or `None`."""
        del params
        return None

    def reset_env(self, key: PRNGKeyArray, params: Any) -> tuple[PyTree, AdapterState]:
        with backend_rules():
            obs, env_state = self._reset(key, params)
        state = AdapterState(
            env_state=env_state,
            time=jnp.array(0, jnp.int32),
            truncated=jnp.array(False),
        )
        return obs, state

    def step_env(
        self, key: PRNGKeyArray, state: AdapterState, action: Any, params: Any
    ) -> tuple[PyTree, AdapterState, Array, Bool[Array, ""], dict[str, Any]]:
        with backend_rules():
            obs, env_state, reward, terminated, truncated, info = self._step(
                key, state.env_state, action, params
            )
        time = state.time + 1
        truncated = jnp.asarray(truncated, bool)
        limit = self._time_limit(params)
        if limit is not None:
            truncated = truncated | (time >= limit)
        terminated = jnp.asarray(terminated, bool)
        state = AdapterState(
            env_state=env_state, time=time, truncated=truncated & ~terminated
        )
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, info

    def is_truncated(self, state: AdapterState, params: Any) -> Bool[Array, ""]:
        """Whether the last step hit a time limit (stored by `step_env`)."""
        del params
        return state.truncated


def to_gymnax_space(space: Any) -> spaces.Space:
    """Converts another suite's space to gymnax's, by what it has: `n` makes a
    `Discrete`; `low`/`high` (or navix's `minimum`/`maximum`) and `shape` a
    `Box`; a dict of spaces a `Dict`.

    **Arguments:** `space`, the backend's space (a gymnax space is returned as
    it is; a `dict` is converted value by value).

    **Returns:** the gymnax `Space`. **Raises:** `TypeError` for a space with
    neither `n` nor bounds and a shape.
    """
    if isinstance(space, spaces.Space):
        return space
    if isinstance(space, dict):
        return spaces.Dict({k: to_gymnax_space(v) for k, v in space.items()})
    if _is_discrete(space):
        return spaces.Discrete(int(space.n))
    low = getattr(space, "low", getattr(space, "minimum", None))
    high = getattr(space, "high", getattr(space, "maximum", None))
    if low is not None and high is not None and hasattr(space, "shape"):
        dtype = getattr(space, "dtype", jnp.float32)
        return spaces.Box(low, high, tuple(space.shape), dtype)
    raise TypeError(f"Cannot convert the space {space!r} to a gymnax space.")


def _is_discrete(space: Any) -> bool:
    n = getattr(space, "n", None)
    shape = getattr(space, "shape", None)
    return n is not None and np.ndim(n) == 0 and tuple(shape or ()) == ()
