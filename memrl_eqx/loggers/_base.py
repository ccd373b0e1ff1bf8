"""The logger interface: the `Logger` protocol and the `AbstractLogger` base."""

import abc
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from jaxtyping import ArrayLike, Float

from ._convert import check_step, scalar, to_python


@runtime_checkable
class Logger(Protocol):
    """Anything that records metrics: `log(metrics, step)` and `close()`.

    `metrics` maps names to Python numbers, NumPy or JAX arrays (0-d, or 1-d for a
    sample such as the returns of several evaluation episodes); `step` is the
    number of environment steps so far, an `int >= 0`. Every logger of
    `memrl_eqx.loggers` is an [`memrl_eqx.loggers.AbstractLogger`][]; a user's own
    object with these two methods works wherever a `Logger` is expected.
    """

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Records `metrics` (a mapping of names to scalars or arrays) at `step`."""

    def close(self) -> None:
        """Flushes and releases whatever the logger holds."""


class AbstractLogger(abc.ABC):
    """The base of the loggers: converts metrics once, then writes them.

    `log(metrics, step)` checks `step`, copies `metrics` to the host with
    [`memrl_eqx.loggers.to_python`][] (one device transfer) and hands the result to
    the subclass's `_write(values, step)`: `values` maps each name to a Python
    float (NaN meaning "nothing to report") or a 1-d float NumPy array (a sample).

    `log_hparams(hparams, metrics)` records a run's hyperparameters with its final
    metrics; by default it records nothing. `close()` flushes and releases the
    logger's resources; it is idempotent, and a logger is a context manager that
    closes on exit. Logging to a closed logger raises `RuntimeError`.

    Subclasses implement `_write`, and may override `_write_hparams(hparams,
    values)` and `_close()`.
    """

    _closed: bool = False

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Records `metrics` at `step` (see the class docstring)."""
        self._check_open()
        step = check_step(step)
        values = to_python(metrics)
        for key, value in values.items():
            if isinstance(value, np.ndarray) and value.ndim > 1:
                raise ValueError(
                    f"metric {key!r} has shape {value.shape}; a logger takes "
                    "numbers and 1-d samples (for stacked per-update metrics use "
                    "memrl_eqx.loggers.rows)"
                )
        self._write(values, step)

    def log_hparams(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, ArrayLike]
    ) -> None:
        """Records the run's hyperparameters `hparams` together with its summary
        `metrics` (e.g. the final evaluation return)."""
        self._check_open()
        values = {key: scalar(value) for key, value in to_python(metrics).items()}
        self._write_hparams(dict(hparams), values)

    def close(self) -> None:
        """Flushes and releases the logger; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @abc.abstractmethod
    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        """Writes one set of converted metrics."""

    def _write_hparams(self, hparams: dict[str, Any], values: dict[str, float]) -> None:
        """Writes hyperparameters and summary metrics; by default, nothing."""

    def _close(self) -> None:
        """Releases the logger's resources; by default, nothing."""

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
