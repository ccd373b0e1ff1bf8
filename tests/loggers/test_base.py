import numpy as np
import pytest

from memrl_eqx.loggers import AbstractLogger, FileLogger, Logger


class Recorder(AbstractLogger):
    def __init__(self):
        self.written = []
        self.closes = 0

    def _write(self, values, step):
        self.written.append((step, values))

    def _close(self):
        self.closes += 1


@pytest.mark.parametrize("step", [1.5, "3", None, np.int64(3)])
def test_a_step_that_is_not_an_int_is_a_type_error_naming_step(step):
    with pytest.raises(TypeError, match="step"):
        Recorder().log({"a": 1.0}, step)


def test_a_negative_step_is_a_value_error_naming_step():
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        Recorder().log({"a": 1.0}, -1)


def test_a_bool_step_is_rejected():
    with pytest.raises(TypeError, match="step"):
        Recorder().log({"a": 1.0}, True)


def test_log_hands_converted_values_to_write():
    logger = Recorder()
    logger.log({"a": np.float32(0.5), "s": np.array([1, 2])}, 7)
    ((step, values),) = logger.written
    assert step == 7 and values["a"] == 0.5 and type(values["a"]) is float
    np.testing.assert_array_equal(values["s"], [1.0, 2.0])


def test_a_metric_of_more_than_one_dimension_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'grid' has shape \\(2, 2\\)"):
        Recorder().log({"grid": np.zeros((2, 2))}, 0)


def test_close_is_idempotent_and_a_closed_logger_refuses_to_log():
    with Recorder() as logger:
        logger.log({"a": 1.0}, 0)
    assert logger.closes == 1
    logger.close()
    assert logger.closes == 1
    with pytest.raises(RuntimeError, match="Recorder is closed"):
        logger.log({"a": 1.0}, 1)


def test_log_hparams_records_nothing_by_default():
    logger = Recorder()
    logger.log_hparams({"lr": 0.1}, {"return": 1.0})
    assert logger.written == []


def test_loggers_and_user_objects_satisfy_the_protocol(tmp_path):
    class Mine:
        def log(self, metrics, step): ...

        def close(self): ...

    with FileLogger(tmp_path / "m.jsonl") as file_logger:
        assert isinstance(file_logger, Logger)
    assert isinstance(Mine(), Logger)
    assert not isinstance(object(), Logger)
