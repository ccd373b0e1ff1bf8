"""Small helpers on gymnax spaces shared by the wrappers."""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from gymnax.environments import spaces


def box_bounds(space: spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    """A `Box`'s bounds broadcast to its shape, as float64 numpy arrays."""
    shape = tuple(space.shape)
    if isinstance(space.low, jax.core.Tracer) or isinstance(
        space.high, jax.core.Tracer
    ):
        raise ValueError(
            "the bounds of the observation or action space are traced JAX values, "
            "so they cannot be read: the space was computed under `jax.jit` "
            "from traced environment parameters or with `jnp`. Build networks and "
            "wrappers, which read spaces, outside `jax.jit` (e.g. build one "
            "network per seed in Python and stack them)."
        )
    low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), shape)
    high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), shape)
    return low, high


def map_boxes(space: Any, fn: Callable[[spaces.Box], Any]) -> Any:
    """Applies `fn` to every `Box` in a (possibly nested `Dict`/`Tuple`) space;
    other spaces are kept."""
    if isinstance(space, spaces.Box):
        return fn(space)
    if isinstance(space, spaces.Dict):
        return spaces.Dict({k: map_boxes(v, fn) for k, v in space.spaces.items()})
    if isinstance(space, spaces.Tuple):
        return spaces.Tuple([map_boxes(s, fn) for s in space.spaces])
    return space


def widen_boxes(space: Any, fill: float) -> Any:
    """`space` with every `Box`'s bounds widened to contain `fill` (for wrappers
    that show `fill` in place of an observation)."""

    def widen(box: spaces.Box) -> spaces.Box:
        low = np.minimum(np.asarray(box.low), fill).astype(box.dtype)
        high = np.maximum(np.asarray(box.high), fill).astype(box.dtype)
        return spaces.Box(low, high, box.shape, box.dtype)

    return map_boxes(space, widen)


def flat_box(space: Any, argument: str) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of a `Box` of shape `(n,)`; `ValueError` naming `argument`
    otherwise."""
    if not isinstance(space, spaces.Box) or len(tuple(space.shape)) != 1:
        raise ValueError(
            f"{argument} must have a flat observation space, a Box of shape (n,), "
            f"got {space!r}; wrap the environment in FlattenObservation first."
        )
    return box_bounds(space)


def flat_bounds(space: Any) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of the flat vector `FlattenObservation` makes of an observation
    in `space`, in the order of `jax.tree.leaves` (a `Dict`'s keys sorted)."""
    if isinstance(space, spaces.Box):
        low, high = box_bounds(space)
        return low.ravel(), high.ravel()
    if isinstance(space, spaces.Discrete):
        return np.zeros(1), np.full(1, space.n - 1, dtype=np.float64)
    if isinstance(space, spaces.Dict):
        parts = [flat_bounds(space.spaces[k]) for k in sorted(space.spaces)]
    elif isinstance(space, spaces.Tuple):
        parts = [flat_bounds(s) for s in space.spaces]
    else:
        raise ValueError(
            "env must have an observation space made of Box, Discrete, Dict and "
            f"Tuple spaces, got {space!r}."
        )
    if not parts:
        return np.zeros(0), np.zeros(0)
    return (
        np.concatenate([low for low, _ in parts]),
        np.concatenate([high for _, high in parts]),
    )


def float32_box(low: np.ndarray, high: np.ndarray) -> spaces.Box:
    """A float32 `Box` with these (same-shape) bounds."""
    low = np.asarray(low, dtype=np.float32)
    high = np.asarray(high, dtype=np.float32)
    return spaces.Box(low, high, low.shape, np.float32)
