"""Checks of the wrappers' constructor arguments, each raising a `ValueError` that
names the argument and what was expected."""

import math
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Int, PyTree


def check_probability(value: Any, name: str = "probability") -> float:
    """`value` as a float in `[0, 1]`."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}.")
    return value


def check_fill(fill: Any) -> float:
    """`fill` as a float, not nan."""
    fill = float(fill)
    if math.isnan(fill):
        raise ValueError("fill must be a number, got nan.")
    return fill


def check_finite(value: Any, name: str) -> float:
    """`value` as a finite float."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """`value` as a Python int of at least 1 (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}.")
    return int(value)


def mask_indices(
    mask: Sequence[int] | Bool[ArrayLike, " _"] | Int[ArrayLike, " _"], n: int
) -> tuple[int, ...]:
    """The entries a `mask` (a boolean mask of length `n` or a non-empty sequence
    of distinct indices in `[0, n)`) chooses, as indices."""
    array = np.asarray(mask)
    if array.ndim != 1:
        raise ValueError(
            f"mask must be a 1-D boolean mask or sequence of indices, got shape "
            f"{array.shape}."
        )
    if array.dtype == np.bool_:
        if array.shape[0] != n:
            raise ValueError(
                f"mask is a boolean mask of length {array.shape[0]}, but the "
                f"observations have {n} entries; expected length {n}."
            )
        indices = tuple(int(i) for i in np.flatnonzero(array))
    elif array.size == 0 or np.issubdtype(array.dtype, np.integer):
        indices = tuple(operator.index(i) for i in array.tolist())
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise ValueError(
                f"mask must hold indices in [0, {n}) (the observations have {n} "
                f"entries), got {bad}."
            )
        if len(set(indices)) != len(indices):
            raise ValueError(f"mask must hold distinct indices, got {indices}.")
    else:
        raise ValueError(
            "mask must be a boolean mask or a sequence of integer indices, got "
            f"dtype {array.dtype}."
        )
    if not indices:
        raise ValueError("mask must keep at least one entry, got none.")
    return indices


def fill_where(hide: Bool[Array, ""], obs: PyTree, fill: float) -> PyTree:
    """`obs` with every entry replaced by `fill` (in each leaf's dtype) where
    `hide`."""
    return jax.tree.map(lambda x: jnp.where(hide, jnp.full_like(x, fill), x), obs)
