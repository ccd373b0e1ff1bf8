import json
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.loggers import NeptuneLogger


def test_a_missing_neptune_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "neptune", None)
    with pytest.raises(
        ModuleNotFoundError, match=r"pip install 'memrl_eqx\[neptune\]'"
    ):
        NeptuneLogger(mode="offline")


def read_operations(folder):
    """The operations of the offline run under `folder/.neptune`: JSON lines
    `{"obj": {"type": ..., "path": [...], ...}, "version": ...}`."""
    (run,) = (folder / ".neptune" / "offline").iterdir()
    return [
        json.loads(line)["obj"]
        for path in sorted(run.glob("data-*.log"))
        for line in path.read_text().splitlines()
    ]


def test_offline_run_holds_the_logged_series(tmp_path, monkeypatch):
    pytest.importorskip("neptune")
    monkeypatch.chdir(tmp_path)  # offline runs are written to ./.neptune
    monkeypatch.delenv("NEPTUNE_API_TOKEN", raising=False)
    with NeptuneLogger(
        config={"lr": 0.1, "sizes": (8, 8)},
        mode="offline",
        capture_hardware_metrics=False,
        capture_stdout=False,
        capture_stderr=False,
        source_files=[],
    ) as logger:
        logger.log({"return": jnp.float32(jnp.nan), "train/loss": 0.25}, 100)
        logger.log({"return": jnp.float32(0.5), "train/loss": np.inf}, 200)
        logger.log({"return": jnp.array([1.0, 2.0, 6.0])}, 300)
        logger.log_hparams({"torso": "gru"}, {"eval/return": 3.0})
    operations = read_operations(tmp_path)
    series = {}
    for op in operations:
        if op["type"] == "LogFloats":
            for value in op["values"]:
                series.setdefault("/".join(op["path"]), []).append(
                    (value["step"], value["value"])
                )
    assert series == {"train/loss": [(100, 0.25)], "return": [(200, 0.5), (300, 3.0)]}
    assigned = {
        "/".join(op["path"]): op["value"]
        for op in operations
        if op["type"].startswith("Assign") and op["path"][0] != "sys"
    }
    assert assigned["parameters/lr"] == 0.1
    assert assigned["parameters/sizes"] == "(8, 8)"
    assert assigned["parameters/torso"] == "gru"
    assert assigned["summary/eval/return"] == 3.0
