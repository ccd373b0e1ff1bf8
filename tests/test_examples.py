"""Every script in examples/ runs end to end with its `--smoke` budget.

Each runs as a user would run it, in a fresh process (on the CPU, compiled as
the tests compile), and must exit cleanly and produce what its docstring says:
the table it prints and the file it writes.
"""

import csv
import json
import math
import os
import pathlib
import re
import subprocess
import sys

from PIL import Image

from .helpers import FAST_XLA_FLAGS


EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"
NUMBER = r"-?\d+\.\d+"


def _run(script: str, tmp_path: pathlib.Path, *args: str) -> str:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FAST_XLA_FLAGS}",
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--smoke", *args],
        cwd=tmp_path,  # anything written by default lands here
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _finite(*values) -> bool:
    return all(math.isfinite(float(v)) for v in values)


def test_every_example_is_tested():
    tested = {
        "custom_cell.py",
        "hyperparameter_sweep.py",
        "ppo_popgym_torsos.py",
        "r2d2_tape.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_ppo_popgym_torsos(tmp_path):
    out = tmp_path / "curves.png"
    stdout = _run(
        "ppo_popgym_torsos.py", tmp_path, "--torsos", "mlp", "gru", "--out", str(out)
    )
    rows = re.findall(
        rf"^(\w+) +({NUMBER}) ± ({NUMBER}) +({NUMBER}) ± ({NUMBER}) +({NUMBER})$",
        stdout,
        flags=re.M,
    )
    assert [row[0] for row in rows] == ["mlp", "gru"], stdout
    for _, *values in rows:
        assert _finite(*values)
        # Returns of RepeatPreviousEasy lie in [-1, 1].
        assert all(-1 <= float(v) <= 1 for v in values[:4])
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size[0] > 100 and image.size[1] > 100
        image.verify()


def test_r2d2_tape(tmp_path):
    out = tmp_path / "r2d2.json"
    stdout = _run("r2d2_tape.py", tmp_path, "--out", str(out))
    (evaluation,) = re.findall(rf"^evaluation return: ({NUMBER})$", stdout, re.M)
    assert -1 <= float(evaluation) <= 1
    # One progress line per chunk (two in the smoke run), steps increasing.
    steps = [int(s) for s in re.findall(rf"^ +(\d+) +{NUMBER}", stdout, re.M)]
    assert len(steps) == 2 and steps[0] < steps[1], stdout
    results = json.loads(out.read_text())
    assert results["steps"] == steps
    assert len(results["evaluation_return"]) == 2  # seeds
    assert _finite(*results["evaluation_return"])
    assert math.isclose(
        sum(results["evaluation_return"]) / 2, float(evaluation), abs_tol=1e-3
    )


def test_hyperparameter_sweep(tmp_path):
    out = tmp_path / "sweep.csv"
    stdout = _run(
        "hyperparameter_sweep.py",
        tmp_path,
        "--learning-rates",
        "1e-4",
        "1e-3",
        "1e-2",
        "--entropy-coefficients",
        "0.0",
        "0.05",
        "--out",
        str(out),
    )
    rows = re.findall(
        rf"^ +(\S+) +({NUMBER}) +({NUMBER}) ± ({NUMBER}) +({NUMBER}) ± ({NUMBER})$",
        stdout,
        flags=re.M,
    )
    # One row per setting, in the order of the grid.
    settings = [(float(lr), float(ent)) for lr, ent, *_ in rows]
    assert settings == [
        (lr, ent) for lr in (1e-4, 1e-3, 1e-2) for ent in (0.0, 0.05)
    ], stdout
    for _, _, *values in rows:
        assert _finite(*values)
    with out.open() as file:
        table = list(csv.DictReader(file))
    assert len(table) == 6
    assert [
        (float(r["learning_rate"]), float(r["entropy_coefficient"])) for r in table
    ] == settings
    assert all(_finite(*r.values()) for r in table)


def test_custom_cell(tmp_path):
    out = tmp_path / "custom.json"
    stdout = _run("custom_cell.py", tmp_path, "--out", str(out))
    assert "keeps the sequence-model contract" in stdout
    (evaluation,) = re.findall(rf"^evaluation return: ({NUMBER})$", stdout, re.M)
    assert -1 <= float(evaluation) <= 1
    results = json.loads(out.read_text())
    decays = [d for seed in results["actor_decays"] for d in seed]
    assert len(results["actor_decays"]) == 2 and len(decays) == 2 * 8  # seeds, units
    assert all(0 < d < 1 for d in decays)
    assert _finite(*results["evaluation_return"], *results["train_return"])
