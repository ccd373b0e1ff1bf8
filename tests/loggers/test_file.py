import csv
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.loggers import FileLogger


ROWS = [
    (128, {"return": jnp.float32(jnp.nan), "loss": jnp.float32(0.1)}),
    (256, {"return": jnp.float32(0.5), "loss": np.inf}),
    (384, {"return": np.array([1.0, 2.0, np.nan]), "loss": -2}),
]


def _write(path, rows=ROWS, **kwargs):
    with FileLogger(path, **kwargs) as logger:
        for step, metrics in rows:
            logger.log(metrics, step)


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_jsonl_round_trip_with_nan_and_inf_as_null(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path)
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert _jsonl(path) == [
        {"step": 128, "return": None, "loss": 0.1},
        {"step": 256, "return": 0.5, "loss": None},
        {"step": 384, "return": 1.5, "loss": -2.0},
    ]


def test_csv_round_trip_with_nan_and_inf_as_empty_cells(tmp_path):
    path = tmp_path / "metrics.csv"
    _write(path)
    assert path.read_text().splitlines()[0] == "step,return,loss"
    read = _csv(path)
    assert [row["return"] for row in read] == ["", "0.5", "1.5"]
    assert [row["loss"] for row in read] == ["0.1", "", "-2.0"]
    assert [float(row["loss"] or "nan") for row in read][0] == 0.1
    assert math.isnan(float(read[1]["loss"] or "nan"))


def test_a_csv_row_with_new_metrics_rewrites_the_file_with_every_column(tmp_path):
    path = tmp_path / "metrics.csv"
    _write(
        path,
        [
            (1, {"a": 1.0}),
            (2, {"a": 2.0, "b": 20.0}),
            (3, {"b": 30.0}),
            (4, {"c": 400.0, "a": 4.0}),
        ],
    )
    assert path.read_text().splitlines() == [
        "step,a,b,c",
        "1,1.0,,",
        "2,2.0,20.0,",
        "3,,30.0,",
        "4,4.0,,400.0",
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_every_row_is_on_disk_as_soon_as_it_is_logged(tmp_path, suffix):
    path = tmp_path / f"metrics{suffix}"
    logger = FileLogger(path)
    logger.log({"a": 1.0}, 1)
    assert path.read_text().splitlines()[-1].startswith(("1,", '{"step": 1,'))
    logger.log({"a": 2.0, "b": 3.0}, 2)  # (a CSV rewrite too)
    assert path.read_text().splitlines()[-1].startswith(("2,", '{"step": 2,'))
    logger.close()


def test_a_new_logger_truncates_an_existing_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path)
    _write(path, [(1, {"x": 1.0})])
    assert _jsonl(path) == [{"step": 1, "x": 1.0}]


def test_resume_keeps_the_rows_up_to_the_step_and_drops_a_partial_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write(path, [(s, {"x": float(s)}) for s in (100, 200, 300, 400, 500)])
    with open(path, "a") as f:
        f.write('{"step": 600, "x": 6')  # killed while writing
    _write(path, [(400, {"x": -4.0})], resume_step=300)
    assert _jsonl(path) == [
        {"step": 100, "x": 100.0},
        {"step": 200, "x": 200.0},
        {"step": 300, "x": 300.0},
        {"step": 400, "x": -4.0},
    ]


def test_resume_of_a_csv_file_keeps_its_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    _write(path, [(s, {"x": float(s), "y": 1.0}) for s in (1, 2, 3)])
    with open(path, "a") as f:
        f.write("4,4.")  # killed while writing
    _write(path, [(3, {"y": 2.0, "z": 5.0})], resume_step=2)
    assert path.read_text().splitlines() == [
        "step,x,y,z",
        "1,1.0,1.0,",
        "2,2.0,1.0,",
        "3,,2.0,5.0",
    ]


def test_resume_drops_a_corrupt_last_line_but_not_a_corrupt_earlier_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "x": 1.0}\n{"step": 2, "x"\n')
    _write(path, [], resume_step=5)
    assert _jsonl(path) == [{"step": 1, "x": 1.0}]
    path.write_text('{"step": 1, "x": 1.0}\ngarbage\n{"step": 2, "x": 2.0}\n')
    with pytest.raises(ValueError, match="metrics.jsonl.*line 2"):
        FileLogger(path, resume_step=5)


def test_resume_without_a_file_starts_one(tmp_path):
    path = tmp_path / "metrics.csv"
    _write(path, [(7, {"x": 1.0})], resume_step=5)
    assert _csv(path) == [{"step": "7", "x": "1.0"}]


def test_another_suffix_is_an_error_naming_the_path_and_the_formats(tmp_path):
    with pytest.raises(ValueError, match="metrics.txt.*'.jsonl'.*'.csv'"):
        FileLogger(tmp_path / "metrics.txt")
    assert not (tmp_path / "metrics.txt").exists()


@pytest.mark.parametrize("resume_step", [None, 10])
def test_a_missing_folder_is_an_os_error_naming_the_path(tmp_path, resume_step):
    path = tmp_path / "missing" / "metrics.jsonl"
    with pytest.raises(FileNotFoundError, match="cannot write .*missing/metrics.jsonl"):
        FileLogger(path, resume_step=resume_step)
    with pytest.raises(ValueError, match="resume_step"):
        FileLogger(tmp_path / "m.csv", resume_step=-1)
