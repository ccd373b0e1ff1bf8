"""`WandbLogger`: metrics to a Weights & Biases run."""

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger
from ._convert import sample_mean
from ._extras import import_extra


class WandbLogger(AbstractLogger):
    """Logs metrics to a Weights & Biases run (`pip install 'memrl_eqx[wandb]'`).

    **Arguments:**

    - `project`: the W&B project.
    - `config`: the run's configuration (hyperparameters), or `None`.
    - `**init_kwargs`: passed on to `wandb.init` (`name=`, `mode="offline"`,
        `dir=`, `resume=`, `id=`, ...).

    `log` is `run.log(values, step=step)`. A number is logged under its name; NaN
    and inf (nothing to report) are skipped. A sample (1-d array) is logged as its
    mean under its name and a `wandb.Histogram` of its finite values under
    `"<name>/histogram"`. `log_hparams` updates the run's config with the
    hyperparameters and its summary with the metrics. `close()` finishes the run.

    **Raises:** `ModuleNotFoundError` naming the extra if `wandb` is not installed.
    """

    def __init__(
        self,
        *,
        project: str = "memrl_eqx",
        config: Mapping[str, Any] | None = None,
        **init_kwargs: Any,
    ):
        self._wandb = import_extra("wandb", extra="wandb", user="WandbLogger")
        self.run = self._wandb.init(
            project=project,
            config=None if config is None else dict(config),
            **init_kwargs,
        )

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        data: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                finite = value[np.isfinite(value)]
                if finite.size:
                    data[f"{key}/histogram"] = self._wandb.Histogram(finite)
                value = sample_mean(value)
            if math.isfinite(value):
                data[key] = value
        if data:
            self.run.log(data, step=step)

    def _write_hparams(self, hparams: dict[str, Any], values: dict[str, float]) -> None:
        self.run.config.update(hparams, allow_val_change=True)
        self.run.summary.update({k: v for k, v in values.items() if math.isfinite(v)})

    def _close(self) -> None:
        self.run.finish()
