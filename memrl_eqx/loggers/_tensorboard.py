"""`TensorBoardLogger`: scalars and histograms in TensorBoard event files."""

import math
import numbers
import os
import time
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger
from ._convert import check_resume_step, sample_mean


class TensorBoardLogger(AbstractLogger):
    """Writes metrics as TensorBoard events (through `tensorboardX.SummaryWriter`).

    **Arguments:**

    - `logdir`: the run's folder (created if missing).
    - `resume_step`: `None` for a new run. An int `s` continues a run restored
        from a checkpoint taken at step `s`: the writer is opened with
        `purge_step=s + 1`, so TensorBoard drops the events the interrupted run
        wrote after the checkpoint.

    A number is a scalar under its name (the tag); NaN and inf (nothing to report)
    are skipped. A sample (1-d array, e.g. the returns of several evaluation
    episodes) is a scalar, its mean, under its name, and a histogram of its finite
    values under `"<name>/histogram"`: TensorBoard cannot show a scalar and a
    histogram under the same tag.

    `log_hparams(hparams, metrics)` writes the hyperparameters plugin's records
    into this run (values that are not bool, int, float or str are written as
    their `str`), and the metrics as scalars at the last step logged.
    """

    logdir: str

    def __init__(self, logdir: str | os.PathLike, *, resume_step: int | None = None):
        from tensorboardX import SummaryWriter

        resume_step = check_resume_step(resume_step)
        self.logdir = os.fspath(logdir)
        self._writer = SummaryWriter(
            self.logdir,
            purge_step=None if resume_step is None else resume_step + 1,
            # tensorboardX names a file by the second and the host; a second
            # writer within the same second would truncate the first one's file.
            filename_suffix=f".{time.time_ns()}",
        )
        self._last_step = 0 if resume_step is None else resume_step

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                finite = value[np.isfinite(value)]
                if finite.size:
                    self._writer.add_histogram(f"{key}/histogram", finite, step)
                value = sample_mean(value)
            if math.isfinite(value):
                self._writer.add_scalar(key, value, step)
        self._last_step = step

    def _write_hparams(self, hparams: dict[str, Any], values: dict[str, float]) -> None:
        from tensorboardX.summary import hparams as hparams_summaries

        hparams = {key: _hparam_value(value) for key, value in hparams.items()}
        metrics = {k: v for k, v in values.items() if math.isfinite(v)}
        for summary in hparams_summaries(hparams, metrics):
            self._writer.file_writer.add_summary(summary, self._last_step)
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, self._last_step)

    def _close(self) -> None:
        self._writer.close()


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "shape", None) == () and np.dtype(value.dtype).kind in "biuf":
        return _hparam_value(np.asarray(value).item())  # a 0-d NumPy or JAX array
    return str(value)
