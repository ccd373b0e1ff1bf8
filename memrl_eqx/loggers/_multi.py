"""`MultiLogger`: one `log` call, many loggers."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger, Logger


class MultiLogger(AbstractLogger):
    """Sends every call to several loggers, converting the metrics only once.

    **Arguments:**

    - `loggers`: the loggers, any objects with `log(metrics, step)` and `close()`
        (see [`memrl_eqx.loggers.Logger`][]).

    The metrics leave the device once, in `MultiLogger.log`; the loggers receive
    Python floats and NumPy samples. `log_hparams` reaches every logger that has
    it. `close()` closes every logger, even when one of them raises, and then
    re-raises the first error.

    **Example:**

    ```python
    import os
    import tempfile

    from memrl_eqx.loggers import ConsoleLogger, FileLogger, MultiLogger

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "metrics.csv")
        with MultiLogger([ConsoleLogger(), FileLogger(path)]) as logger:
            logger.log({"return": 0.5}, step=1024)  # prints and writes a row
        with open(path) as f:
            assert f.read().splitlines() == ["step,return", "1024,0.5"]
    ```
    """

    loggers: tuple[Logger, ...]

    def __init__(self, loggers: Sequence[Logger]):
        loggers = tuple(loggers)
        for i, logger in enumerate(loggers):
            if not isinstance(logger, Logger):
                raise TypeError(
                    f"MultiLogger: loggers[{i}] is {logger!r}, which has no "
                    "log(metrics, step) and close() methods"
                )
        self.loggers = loggers

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        for logger in self.loggers:
            if isinstance(logger, AbstractLogger):
                logger._check_open()
                logger._write(values, step)
            else:
                logger.log(values, step)

    def _write_hparams(self, hparams: dict[str, Any], values: dict[str, float]) -> None:
        for logger in self.loggers:
            if isinstance(logger, AbstractLogger):
                logger._check_open()
                logger._write_hparams(hparams, values)
            elif hasattr(logger, "log_hparams"):
                logger.log_hparams(hparams, values)

    def _close(self) -> None:
        first_error = None
        for logger in self.loggers:
            try:
                logger.close()
            except Exception as error:
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error
