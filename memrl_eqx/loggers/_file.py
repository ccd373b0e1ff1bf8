"""`FileLogger`: one row per report in a JSON Lines or CSV file."""

import csv
import io
import json
import math
import os
from typing import Any

import numpy as np
from jaxtyping import Float

from ._base import AbstractLogger
from ._convert import check_resume_step, scalar


_SUFFIXES = (".jsonl", ".csv")


class FileLogger(AbstractLogger):
    """Writes one row `{"step": step, **metrics}` per report to a file.

    **Arguments:**

    - `path`: the file; its suffix picks the format: `.jsonl` (JSON Lines, one
        object per line) or `.csv` (a header, then one line per row).
    - `resume_step`: `None` starts a new file (an existing one is truncated). An
        int `s` continues a run restored from a checkpoint taken at step `s`: the
        rows of the existing file with `step <= s` are kept, later rows (written
        after the checkpoint) and a partial or corrupt last line (left by a killed
        process) are dropped, and new rows are appended. A missing file starts
        empty.

    A sample (1-d array) is written as its mean. NaN and inf (nothing to report)
    are written as JSON `null` or an empty CSV cell, never as a number. The CSV
    header comes from the first row; a later row with new metrics rewrites the
    file with the union of the columns (earlier rows get empty cells). Every row is
    flushed as it is written, so a killed process loses at most the row it was
    writing.

    **Raises:** `ValueError` for another suffix; `OSError` naming the path if the
    file cannot be written (e.g. its folder does not exist).

    **Example:**

    ```python
    import json
    import os
    import tempfile

    import jax.numpy as jnp
    from memrl_eqx.loggers import FileLogger

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "metrics.jsonl")
        with FileLogger(path) as logger:
            logger.log({"return": jnp.array([1.0, 3.0]), "loss": 0.5}, step=1024)
            logger.log({"return": float("nan"), "loss": 0.25}, step=2048)
        with open(path) as f:
            rows = [json.loads(line) for line in f]
        # Resume from a checkpoint taken at step 1024: later rows are dropped.
        FileLogger(path, resume_step=1024).close()
        with open(path) as f:
            kept = f.read().splitlines()
    assert rows[0] == {"step": 1024, "return": 2.0, "loss": 0.5}  # the mean
    assert rows[1] == {"step": 2048, "return": None, "loss": 0.25}
    assert len(kept) == 1
    ```
    """

    path: str
    format: str

    def __init__(self, path: str | os.PathLike, *, resume_step: int | None = None):
        self.path = os.fspath(path)
        suffix = os.path.splitext(self.path)[1].lower()
        if suffix not in _SUFFIXES:
            raise ValueError(
                f"FileLogger: cannot tell the format of {self.path!r} from its "
                f"suffix {suffix!r}; use '.jsonl' (JSON Lines) or '.csv'"
            )
        self.format = suffix[1:]
        resume_step = check_resume_step(resume_step)
        self._fields: list[str] = []  # the CSV header
        self._file = None
        try:
            if resume_step is not None:
                self._truncate_after(resume_step)
            self._file = self._open("w" if resume_step is None else "a")
        except OSError as error:
            raise self._os_error(error) from error

    def _write(
        self, values: dict[str, float | Float[np.ndarray, " sample"]], step: int
    ) -> None:
        row: dict[str, Any] = {"step": step}
        for key, value in values.items():
            if key != "step":
                number = scalar(value)
                row[key] = number if math.isfinite(number) else None
        try:
            if self.format == "jsonl":
                self._file.write(json.dumps(row, allow_nan=False) + "\n")
            else:
                self._write_csv_row(row)
            self._file.flush()
        except OSError as error:
            raise self._os_error(error) from error

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()

    # CSV

    def _write_csv_row(self, row: dict[str, Any]) -> None:
        new = [key for key in row if key not in self._fields]
        if new and self._fields:
            self._rewrite_with_fields(self._fields + new)
        elif new:
            self._fields = list(row)
            self._csv_writer().writeheader()
        cells = {k: "" if v is None else repr(v) for k, v in row.items()}
        self._csv_writer().writerow(cells)

    def _csv_writer(self) -> csv.DictWriter:
        return csv.DictWriter(
            self._file, fieldnames=self._fields, restval="", lineterminator="\n"
        )

    def _rewrite_with_fields(self, fields: list[str]) -> None:
        """Rewrites the file with the header `fields` (new columns empty)."""
        self._file.close()
        with open(self.path, newline="", encoding="utf-8") as f:
            old = list(csv.DictReader(f))
        self._fields = fields
        self._replace(_csv_text(fields, old))
        self._file = self._open("a")

    # Files

    def _open(self, mode: str):
        return open(self.path, mode, encoding="utf-8", newline="")

    def _replace(self, text: str) -> None:
        """Replaces the file's contents at once (write beside it, then rename)."""
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, self.path)

    def _truncate_after(self, resume_step: int) -> None:
        """Keeps the rows of an existing file with `step <= resume_step`."""
        try:
            with open(self.path, encoding="utf-8", newline="") as f:
                text = f.read()
        except FileNotFoundError:
            return
        # A last line without its newline was cut off by a killed process.
        lines = text.split("\n")[:-1]
        if self.format == "jsonl":
            kept = [
                line
                for line in _parse_lines(self.path, lines, _json_step)
                if _json_step(line) <= resume_step
            ]
            self._replace("".join(line + "\n" for line in kept))
            return
        if not lines:
            self._replace("")
            return
        header = next(csv.reader([lines[0]]))
        if not header or header[0] != "step":
            raise ValueError(
                f"FileLogger: {self.path!r} is not a metrics CSV file (its first "
                f"column is not 'step'); cannot resume it"
            )

        def step_of(line: str) -> int:
            (cells,) = csv.reader([line])
            if len(cells) != len(header):
                raise ValueError(f"{len(cells)} cells, the header has {len(header)}")
            return int(cells[0])

        body = _parse_lines(self.path, lines[1:], step_of, first_line=2)
        self._fields = header
        kept = [line for line in body if step_of(line) <= resume_step]
        self._replace("".join(line + "\n" for line in [lines[0], *kept]))

    def _os_error(self, error: OSError) -> OSError:
        message = f"FileLogger: cannot write {self.path!r}: {error.strerror or error}"
        if error.errno is None:
            return OSError(message)
        return OSError(error.errno, message)  # the matching subclass


def _json_step(line: str) -> int:
    row = json.loads(line)
    step = row["step"]
    if not isinstance(step, int):
        raise ValueError(f"step {step!r} is not an int")
    return step


def _parse_lines(path: str, lines: list[str], step_of, first_line: int = 1):
    """The lines whose step can be read; an unreadable last line is dropped (a
    write cut short), an unreadable earlier one is an error."""
    good = []
    for i, line in enumerate(lines):
        try:
            step_of(line)
        except (ValueError, KeyError, TypeError) as error:
            if i == len(lines) - 1:
                break
            raise ValueError(
                f"FileLogger: cannot resume {path!r}: line {first_line + i} is not "
                f"a row of metrics ({error})"
            ) from None
        good.append(line)
    return good


def _csv_text(fields: list[str], rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
