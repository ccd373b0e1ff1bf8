"""Argument checks shared by the POPGym tasks' constructors."""

import math
import numbers
import operator
from typing import Any


def _as_int(name: str, value: Any) -> int:
    """`value` as a Python int, or a `ValueError` naming the argument `name`."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {value!r}.") from None


def _at_least(name: str, value: Any, minimum: int) -> int:
    """`value` as a Python int no smaller than `minimum`, or a `ValueError`."""
    value = _as_int(name, value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _check_noise_sigma(noise_sigma: Any) -> float:
    """A finite, non-negative standard deviation of observation noise."""
    if isinstance(noise_sigma, bool) or not isinstance(noise_sigma, numbers.Real):
        raise ValueError(f"noise_sigma must be a real number, got {noise_sigma!r}.")
    noise_sigma = float(noise_sigma)
    if not (math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise ValueError(
            f"noise_sigma must be finite and non-negative, got {noise_sigma}."
        )
    return noise_sigma
