"""Metrics leave JAX here: `to_python` and `rows`, the one place of the loggers
that copies arrays from the device."""

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float


# Floating dtypes kept as they are; any other float (bfloat16, float8, ...) is
# widened to float32, and bools and integers to float64.
_NATIVE_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _as_float_array(key: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as error:  # e.g. a ragged list
        raise TypeError(f"metric {key!r} is not numeric: {value!r}") from error
    dtype = array.dtype
    if dtype in _NATIVE_FLOATS:
        return array
    if dtype.kind in "biu":
        return array.astype(np.float64)
    if dtype.kind == "V" and jnp.issubdtype(dtype, jnp.floating):
        return array.astype(np.float32)
    raise TypeError(
        f"metric {key!r} is not numeric: {value!r} (dtype {dtype}); metrics are "
        "numbers or arrays of numbers"
    )


def _floats(array: np.ndarray) -> list[float]:
    """The values of a float array as Python floats, each by the shortest decimal
    that round-trips in the array's own dtype (float32 `0.1` becomes `0.1`, not
    `0.10000000149011612`)."""
    if array.dtype == np.float64:
        return array.ravel().tolist()
    return [float(text) for text in array.astype(str).ravel()]


def to_python(
    metrics: Mapping[str, Any],
) -> dict[str, float | Float[np.ndarray, "..."]]:
    """Copies a dict of metrics to the host in one `jax.device_get`.

    **Arguments:**

    - `metrics`: a mapping from names to Python numbers, NumPy or JAX arrays.

    **Returns:** a new dict with the same keys: a 0-d value becomes a Python
    `float` (float32 values by their shortest decimal, so `0.1` stays `0.1`); an
    array of one or more dimensions becomes a float NumPy array. NaN and inf are
    kept (the loggers decide how to write them).

    **Raises:** `TypeError` naming the key if a key is not a string or a value is
    not numeric (a string, `None`, a nested dict, complex numbers, ...).
    """
    for key in metrics:
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r}")
    host = jax.device_get(dict(metrics))
    values: dict[str, float | np.ndarray] = {}
    for key in metrics:  # device_get sorts the keys: keep the caller's order
        array = _as_float_array(key, host[key])
        values[key] = _floats(array)[0] if array.ndim == 0 else array
    return values


def rows(
    metrics: Mapping[str, ArrayLike], step_key: str = "step"
) -> list[tuple[int, dict[str, float]]]:
    """Splits the stacked metrics of one training call into one row per update.

    **Arguments:**

    - `metrics`: what `algo.train` returns: every value has shape
        `(num_updates,)`, one entry per update.
    - `step_key`: the entry that holds the environment steps done after each
        update.

    **Returns:** a list of `(step, row)` pairs, one per update in order: `step` an
    `int`, `row` a dict of Python floats holding every other entry (NaN where the
    algorithm had nothing to report, e.g. no episode ended in that update). The
    arrays leave the device in one [`memrl_eqx.loggers.to_python`][] call.

    **Raises:** `ValueError` naming the key if `step_key` is missing, a value is
    not 1-d, or two values disagree on the number of updates, or a step is not a
    whole number; `TypeError` as `to_python` does.
    """
    if step_key not in metrics:
        raise ValueError(
            f"rows: the metrics have no {step_key!r} entry (keys: {sorted(metrics)})"
        )
    values = to_python(metrics)
    steps = np.asarray(values.pop(step_key))
    if steps.ndim != 1:
        raise ValueError(
            f"rows: {step_key!r} has shape {steps.shape}; expected (num_updates,)"
        )
    columns = {}
    for key, value in values.items():
        shape = np.shape(value)
        if shape != steps.shape:
            raise ValueError(
                f"rows: {key!r} has shape {shape} but {step_key!r} has shape "
                f"{steps.shape}; every metric needs one entry per update"
            )
        columns[key] = _floats(value)
    out = []
    for i, step in enumerate(steps.tolist()):
        if not (math.isfinite(step) and float(step).is_integer()):
            raise ValueError(f"rows: {step_key!r}[{i}] = {step} is not a whole number")
        out.append((int(step), {key: column[i] for key, column in columns.items()}))
    return out


def check_step(step: Any) -> int:
    """`step` if it is an int >= 0, else a `TypeError`/`ValueError` naming it."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(
            f"step must be an int >= 0, got {step!r} of type {type(step).__name__}"
        )
    if step < 0:
        raise ValueError(f"step must be an int >= 0, got {step}")
    return step


def check_resume_step(resume_step: Any) -> int | None:
    """`resume_step` if it is None or an int >= 0, else an error naming it."""
    if resume_step is None:
        return None
    if isinstance(resume_step, bool) or not isinstance(resume_step, int):
        raise TypeError(f"resume_step must be None or an int >= 0, got {resume_step!r}")
    if resume_step < 0:
        raise ValueError(f"resume_step must be None or an int >= 0, got {resume_step}")
    return resume_step


def sample_mean(sample: np.ndarray) -> float:
    """The mean of the finite entries of a sample (NaN if it has none), as a Python
    float by the shortest decimal of the sample's dtype."""
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return math.nan
    return _floats(np.asarray(finite.mean(dtype=finite.dtype)))[0]


def scalar(value: float | np.ndarray) -> float:
    """A converted metric as one number: itself, or a sample's finite mean."""
    if isinstance(value, np.ndarray):
        return sample_mean(value)
    return value
