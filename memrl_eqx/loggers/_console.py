"""`ConsoleLogger`: one readable line per report, at a limited rate."""

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger
from ._convert import scalar
from ._format import format_value


class ConsoleLogger(AbstractLogger):
    """Prints metrics as one line per report:

    ```
    step 12,288 | return 0.532 | length 10.0 | loss/policy -0.0123
    ```

    **Arguments:**

    - `every`: the least number of seconds between two lines. The first report is
        always printed; a report that comes sooner than `every` seconds after the
        last printed line is held back, and replaced by the next one. `close()`
        prints the last report if it was held back. `every=0` prints every
        report.
    - `keys`: the metrics to show, in this order (`-` for one a report lacks);
        `None` shows every metric of each report, in its order.
    - `stream`: a text stream (anything with `write` and `flush`) to print to;
        `None` means `sys.stdout` at the time of printing.
    - `clock`: the time in seconds (`time.monotonic`; tests pass their own).

    A sample (1-d array) shows as its mean; NaN (nothing to report, e.g. no
    episode ended) as `-`.
    """

    every: float
    keys: tuple[str, ...] | None

    def __init__(
        self,
        *,
        every: int | float = 10.0,
        keys: Sequence[str] | None = None,
        stream: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not every >= 0:
            raise ValueError(f"ConsoleLogger: every must be >= 0 seconds, got {every}")
        if isinstance(keys, str):
            raise TypeError(
                f"ConsoleLogger: keys must be a sequence of names, got {keys!r}"
            )
        self.every = float(every)
        self.keys = None if keys is None else tuple(keys)
        self._stream = stream
        self._clock = clock
        self._last_print: float | None = None
        self._held: str | None = None

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        line = self._line(values, step)
        now = self._clock()
        if self._last_print is None or now - self._last_print >= self.every:
            self._print(line)
            self._last_print = now
            self._held = None
        else:
            self._held = line

    def _close(self) -> None:
        if self._held is not None:
            self._print(self._held)
            self._held = None

    def _line(self, values, step: int) -> str:
        keys = [k for k in values if k != "step"] if self.keys is None else self.keys
        cells = [f"step {step:,}"]
        for key in keys:
            text = format_value(scalar(values[key])) if key in values else "-"
            cells.append(f"{key} {text}")
        return " | ".join(cells)

    def _print(self, line: str) -> None:
        stream = sys.stdout if self._stream is None else self._stream
        stream.write(line + "\n")
        stream.flush()
