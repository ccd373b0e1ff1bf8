import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.loggers import AbstractLogger, ConsoleLogger, FileLogger, MultiLogger


class Mine:
    """A user's logger: only the protocol's two methods, plus log_hparams."""

    def __init__(self, error=None):
        self.calls, self.hparams, self.closed, self.error = [], [], False, error

    def log(self, metrics, step):
        self.calls.append((step, metrics))

    def log_hparams(self, hparams, metrics):
        self.hparams.append((hparams, metrics))

    def close(self):
        self.closed = True
        if self.error is not None:
            raise self.error


class Recorder(AbstractLogger):
    def __init__(self):
        self.hparams = []

    def _write(self, values, step):
        pass

    def _write_hparams(self, hparams, values):
        self.hparams.append((hparams, values))


def test_every_logger_gets_every_row_converted_once(tmp_path, monkeypatch):
    calls = []
    device_get = jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda x: calls.append(x) or device_get(x))
    stream, mine = io.StringIO(), Mine()
    path = tmp_path / "metrics.jsonl"
    with MultiLogger(
        [ConsoleLogger(every=0, stream=stream), FileLogger(path), mine]
    ) as logger:
        logger.log({"return": jnp.float32(0.5), "eval": jnp.array([1.0, 3.0])}, 64)
        logger.log({"return": jnp.float32(0.25)}, 128)
    assert len(calls) == 2  # one transfer per log call, for three loggers
    assert stream.getvalue().splitlines() == [
        "step 64 | return 0.500 | eval 2.00",
        "step 128 | return 0.250",
    ]
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"step": 64, "return": 0.5, "eval": 2.0},
        {"step": 128, "return": 0.25},
    ]
    (step, values), _ = mine.calls
    assert step == 64 and type(values["return"]) is float
    assert isinstance(values["eval"], np.ndarray)
    assert mine.closed


def test_log_hparams_reaches_every_logger_that_has_it():
    mine, recorder = Mine(), Recorder()
    MultiLogger([mine, recorder]).log_hparams({"lr": 0.1}, {"return": jnp.float32(2)})
    assert mine.hparams == [({"lr": 0.1}, {"return": 2.0})]
    assert recorder.hparams == [({"lr": 0.1}, {"return": 2.0})]


def test_close_closes_every_logger_and_raises_the_first_error():
    first, middle, last = Mine(OSError("disk")), Mine(), Mine(RuntimeError("x"))
    logger = MultiLogger([first, middle, last])
    with pytest.raises(OSError, match="disk"):
        logger.close()
    assert first.closed and middle.closed and last.closed


def test_something_that_is_not_a_logger_is_named():
    # (the test suite's jaxtyping hook reports it before MultiLogger does)
    with pytest.raises(TypeError, match="loggers"):
        MultiLogger([Mine(), print])
