"""`DashboardLogger`: a live table of the metrics in the terminal."""

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger
from ._convert import scalar
from ._extras import import_extra
from ._format import format_value


_BARS = "▁▂▃▄▅▆▇█"
_POINTS = 40  # the width of a sparkline


class _Curve:
    """A metric's history, downsampled to at most `2 * capacity` evenly spaced
    points (each the mean of `stride` consecutive values)."""

    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self.points: list[float] = []
        self.stride = 1
        self._sum, self._count = 0.0, 0
        self.latest = math.nan
        self.best = math.nan

    def add(self, value: float, lower_is_better: bool) -> None:
        if math.isnan(value):  # nothing to report: keep the latest value
            return
        self.latest = value
        if math.isnan(self.best) or (value < self.best) == lower_is_better:
            self.best = value
        self._sum += value
        self._count += 1
        if self._count == self.stride:
            self.points.append(self._sum / self._count)
            self._sum, self._count = 0.0, 0
            if len(self.points) == 2 * self.capacity:
                pairs = zip(self.points[::2], self.points[1::2])
                self.points = [(a + b) / 2 for a, b in pairs]
                self.stride *= 2

    def sparkline(self, width: int = _POINTS) -> str:
        points = self.points + ([self._sum / self._count] if self._count else [])
        if not points:
            return ""
        if len(points) > width:  # the mean of each of `width` equal chunks
            edges = np.linspace(0, len(points), width + 1).astype(int)
            points = [float(np.mean(points[a:b])) for a, b in zip(edges, edges[1:])]
        low, high = min(points), max(points)
        if high == low:
            return _BARS[len(_BARS) // 2 - 1] * len(points)
        scale = (len(_BARS) - 1) / (high - low)
        return "".join(_BARS[round((p - low) * scale)] for p in points)


class DashboardLogger(AbstractLogger):
    """A live dashboard in the terminal (`pip install 'memrl_eqx[dashboard]'`,
    which installs `rich`).

    A table with one line per metric in `keys`: its latest value, its best value
    (the lowest for a metric whose name contains `loss`, else the highest), and a
    sparkline `▁▂▃▅▇█` of its curve (at most 40 points, each the mean of a stretch
    of the run); above it, the latest step and the steps per second since the
    first report. NaN (nothing to report, e.g. no episode ended) leaves a
    metric as it was; a sample (1-d array) counts as its mean.

    **Arguments:**

    - `keys`: the metrics to show.
    - `console`: the `rich.console.Console` to draw on (`None`: the terminal).
    - `refresh_per_second`: how often the display is redrawn.

    The display starts when the logger is built and stops at `close()`, which
    leaves the last table on the screen.

    **Raises:** `ModuleNotFoundError` naming the extra if `rich` is not installed.
    """

    keys: tuple[str, ...]

    def __init__(
        self,
        *,
        keys: Sequence[str] = ("return",),
        console: Any = None,
        refresh_per_second: int | float = 4.0,
    ):
        live = import_extra("rich.live", extra="dashboard", user="DashboardLogger")
        self._table_module = import_extra(
            "rich.table", extra="dashboard", user="DashboardLogger"
        )
        if isinstance(keys, str):
            raise TypeError(
                f"DashboardLogger: keys must be a sequence of names, got {keys!r}"
            )
        self.keys = tuple(keys)
        self._curves = {key: _Curve() for key in self.keys}
        self._step: int | None = None
        self._start: tuple[float, int] | None = None  # (time, step) of the first report
        self._rate = math.nan
        self._live = live.Live(
            self._render(),
            console=console,
            refresh_per_second=refresh_per_second,
        )
        self._live.start()

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = (now, step)
        elif now > self._start[0]:
            self._rate = (step - self._start[1]) / (now - self._start[0])
        self._step = step
        for key, curve in self._curves.items():
            if key in values:
                curve.add(scalar(values[key]), lower_is_better="loss" in key)
        self._live.update(self._render())

    def _close(self) -> None:
        self._live.update(self._render())
        self._live.stop()

    def _render(self):
        step = "-" if self._step is None else f"{self._step:,}"
        rate = "-" if math.isnan(self._rate) else f"{self._rate:,.0f}"
        table = self._table_module.Table(title=f"step {step}  ·  {rate} steps/s")
        table.add_column("metric")
        table.add_column("latest", justify="right")
        table.add_column("best", justify="right")
        table.add_column("curve", no_wrap=True)
        for key, curve in self._curves.items():
            table.add_row(
                key,
                format_value(curve.latest),
                format_value(curve.best),
                curve.sparkline(),
            )
        return table
