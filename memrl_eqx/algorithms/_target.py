"""Target networks: the slowly moving copies that value-based methods bootstrap
from."""

from typing import TypeVar

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float


_M = TypeVar("_M")


def polyak_update(
    online: _M,
    target: _M,
    tau: float | Float[Array, ""],
    update: bool | Bool[Array, ""] = True,
) -> _M:
    """`(1 - tau) * target + tau * online` for every floating-point leaf, where
    `update` holds, else `target` unchanged.

    `tau = 1` copies the online network (a hard update, as in DQN every
    `target_update_period` steps); a small `tau` every step is the exponential
    moving average of SAC. `online` and `target` must have the same structure.
    Integer leaves and static fields are taken from `online`.
    """
    params_online, static = eqx.partition(online, eqx.is_inexact_array)
    params_target = eqx.filter(target, eqx.is_inexact_array)
    mixed = jtu.tree_map(
        lambda o, t: jnp.where(update, (1 - tau) * t + tau * o, t).astype(t.dtype),
        params_online,
        params_target,
    )
    return eqx.combine(mixed, static)
