"""`NeptuneLogger`: metrics to a Neptune run."""

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger
from ._convert import scalar
from ._extras import import_extra


class NeptuneLogger(AbstractLogger):
    """Logs metrics to a Neptune run (`pip install 'memrl_eqx[neptune]'`).

    **Arguments:**

    - `project`: the Neptune project `"workspace/name"`; `None` reads the
        `NEPTUNE_PROJECT` environment variable (not needed with
        `mode="offline"`).
    - `config`: the run's configuration, written under `"parameters"`, or `None`.
    - `**init_kwargs`: passed on to `neptune.init_run` (`mode="offline"`,
        `name=`, `with_id=`, ...).

    Each number is appended to the series under its name:
    `run[name].append(value, step=step)`; NaN and inf (nothing to report) are
    skipped. A sample (1-d array) is appended as its mean (Neptune has no
    histogram series). `log_hparams` writes the hyperparameters under
    `"parameters"` (values Neptune cannot store as their `str`) and the metrics
    under `"summary"`. `close()` stops the run.

    **Raises:** `ModuleNotFoundError` naming the extra if `neptune` is not
    installed.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        config: Mapping[str, Any] | None = None,
        **init_kwargs: Any,
    ):
        self._neptune = import_extra("neptune", extra="neptune", user="NeptuneLogger")
        self.run = self._neptune.init_run(project=project, **init_kwargs)
        if config is not None:
            self.run["parameters"] = self._storable(config)

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        for key, value in values.items():
            value = scalar(value)
            if math.isfinite(value):
                self.run[key].append(value, step=step)

    def _write_hparams(self, hparams: dict[str, Any], values: dict[str, float]) -> None:
        self.run["parameters"] = self._storable(hparams)
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        if finite:
            self.run["summary"] = finite

    def _close(self) -> None:
        self.run.stop()

    def _storable(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        from neptune.utils import stringify_unsupported

        return stringify_unsupported(dict(mapping))
