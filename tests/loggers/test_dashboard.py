import io
import sys

import numpy as np
import pytest

from memrl_eqx.loggers import DashboardLogger
from memrl_eqx.loggers._dashboard import _Curve


rich_console = pytest.importorskip("rich.console")


def test_the_table_shows_each_key_its_latest_and_best_value_and_a_sparkline():
    console = rich_console.Console(
        file=io.StringIO(), width=100, force_terminal=True, record=True
    )
    with DashboardLogger(
        keys=("return", "loss", "length"), console=console, refresh_per_second=20
    ) as logger:
        for i in range(10):
            logger.log({"return": i / 10, "loss": 1.0 / (i + 1)}, 1024 * (i + 1))
        logger.log({"return": np.nan, "loss": 0.5}, 11 * 1024)
    text = console.export_text()
    final = text[text.rindex("step 11,264") :]
    lines = {line.split()[1]: line for line in final.splitlines() if "│" in line}
    cells = {
        key: [c.strip() for c in line.split("│")[2:5]] for key, line in lines.items()
    }
    # latest, best, curve; NaN (no episode ended) keeps the latest return
    assert cells["return"] == ["0.900", "0.900", "▁▂▃▃▄▅▆▆▇█"]
    assert cells["loss"] == ["0.500", "0.100", "█▄▃▂▂▂▁▁▁▁▄"]
    assert cells["length"] == ["-", "-", ""]
    assert "steps/s" in final


def test_a_curve_keeps_evenly_spaced_means_and_a_sparkline_of_at_most_40_bars():
    curve = _Curve(capacity=8)
    for i in range(1000):
        curve.add(float(i), lower_is_better=False)
    assert curve.stride == 64 and len(curve.points) == 15
    assert curve.points[0] == np.mean(np.arange(64))  # each point: `stride` values
    assert np.all(np.diff(curve.points) == 64)
    line = curve.sparkline()
    assert len(line) == 16 and line[0] == "▁" and line[-1] == "█"
    assert list(line) == sorted(line)
    assert (curve.latest, curve.best) == (999.0, 999.0)
    flat = _Curve()
    for _ in range(100):
        flat.add(2.0, lower_is_better=True)
    assert len(flat.sparkline()) == 40 and set(flat.sparkline()) == {"▄"}


def test_a_missing_rich_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rich.live", None)
    with pytest.raises(
        ModuleNotFoundError, match=r"pip install 'memrl_eqx\[dashboard\]'"
    ):
        DashboardLogger()
