from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces
from gymnax.environments.environment import Environment
from jaxtyping import Array, ArrayLike, Float

from ._spaces import box_bounds
from ._wrapper import AbstractActionWrapper


def _box_action_space(env: Environment, wrapper: str) -> spaces.Box:
    space = env.action_space(env.default_params)
    if not isinstance(space, spaces.Box):
        raise ValueError(
            f"{wrapper} needs env with a continuous (Box) action space, got {space!r}."
        )
    return space


def _bounds(space: spaces.Box) -> tuple[Array, Array]:
    """A Box's bounds as arrays of its dtype; traced if the params are."""
    dtype = space.dtype
    low = jnp.broadcast_to(jnp.asarray(space.low).astype(dtype), space.shape)
    high = jnp.broadcast_to(jnp.asarray(space.high).astype(dtype), space.shape)
    return low, high


class ClipAction(AbstractActionWrapper):
    """Clips continuous actions to the action space's bounds.

    The agent may send any action of the action space's shape (a real scalar or
    array broadcastable to it); the wrapped environment receives it clipped,
    entry by entry, to `[low, high]` of its `Box`, in the `Box`'s dtype. The
    action space stays the wrapped `Box` (the range of distinct actions, so
    sampling from it still works).

    **Arguments:**

    - `env`: the environment to wrap, with a `Box` action space.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import ClipAction, make

    env, params = make("gymnax::Pendulum-v1")  # torque in [-2, 2]
    env = ClipAction(env)
    assert env.action(5.0, params) == 2.0  # a torque of 5.0 is applied as 2.0
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, 5.0, params
    )
    ```
    """

    def __init__(self, env: Environment):
        super().__init__(env)
        _box_action_space(env, "ClipAction")

    def action(
        self, action: Float[ArrayLike, "..."], params: Any
    ) -> Float[Array, "..."]:
        space = self.env.action_space(params)
        low, high = _bounds(space)
        action = jnp.broadcast_to(jnp.asarray(action).astype(space.dtype), low.shape)
        return jnp.clip(action, low, high)


class RescaleAction(AbstractActionWrapper):
    """Lets the agent act in `[low, high]` (e.g. `[-1, 1]`), mapped affinely onto
    the wrapped environment's action `Box`.

    An action `a` (of the `Box`'s shape) is sent as
    `env_low * (1 - t) + env_high * t` with `t = (a - low) / (high - low)`, entry
    by entry, in the `Box`'s dtype: `low` maps to `env_low` and `high` to
    `env_high` exactly. Actions outside `[low, high]` map outside the `Box` (wrap
    in [`memrl_eqx.envs.ClipAction`][] outside this wrapper to clip them). The
    action space is `Box(low, high)` of the wrapped shape and dtype.

    **Arguments:**

    - `env`: the environment to wrap, with a `Box` action space of finite
        bounds.
    - `low`, `high`: the agent's action bounds (default -1.0 and 1.0), scalars
        or arrays broadcastable to the action shape, finite, with `low < high`
        entry by entry.

    **Example:**

    ```python
    from memrl_eqx.envs import make, RescaleAction

    env, params = make("gymnax::Pendulum-v1")  # torque in [-2, 2]
    env = RescaleAction(env, -1.0, 1.0)
    assert env.action(0.5, params) == 1.0  # action 0.5 applies a torque of 1.0
    assert env.action_space(params).high == 1.0
    ```
    """

    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        env: Environment,
        low: float | Float[ArrayLike, "..."] = -1.0,
        high: float | Float[ArrayLike, "..."] = 1.0,
    ):
        super().__init__(env)
        space = _box_action_space(env, "RescaleAction")
        env_low, env_high = box_bounds(space)
        if not (np.all(np.isfinite(env_low)) and np.all(np.isfinite(env_high))):
            raise ValueError(
                f"RescaleAction needs env with a bounded action space, got {space!r}."
            )
        shape = tuple(space.shape)
        bounds = []
        for name, value in (("low", low), ("high", high)):
            value = np.asarray(value, dtype=np.float64)
            try:
                value = np.broadcast_to(value, shape)
            except ValueError:
                raise ValueError(
                    f"{name} must be broadcastable to the action shape {shape}, got "
                    f"shape {value.shape}."
                ) from None
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite, got {value}.")
            bounds.append(value)
        if not np.all(bounds[0] < bounds[1]):
            raise ValueError(
                f"low must be below high entry by entry, got low={bounds[0]}, "
                f"high={bounds[1]}."
            )
        self.low = tuple(float(x) for x in bounds[0].ravel())
        self.high = tuple(float(x) for x in bounds[1].ravel())

    def action_space(self, params: Any = None) -> spaces.Box:
        space = self.env.action_space(params)
        shape = tuple(space.shape)
        dtype = space.dtype
        low = np.asarray(self.low).reshape(shape).astype(dtype)
        high = np.asarray(self.high).reshape(shape).astype(dtype)
        return spaces.Box(low, high, shape, dtype)

    def action(
        self, action: Float[ArrayLike, "..."], params: Any
    ) -> Float[Array, "..."]:
        space = self.env.action_space(params)
        env_low, env_high = _bounds(space)
        dtype = space.dtype
        low = jnp.asarray(np.asarray(self.low).reshape(env_low.shape), dtype)
        high = jnp.asarray(np.asarray(self.high).reshape(env_low.shape), dtype)
        action = jnp.broadcast_to(jnp.asarray(action).astype(dtype), env_low.shape)
        t = (action - low) / (high - low)
        return env_low * (1 - t) + env_high * t
