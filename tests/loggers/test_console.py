import io

import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.loggers import ConsoleLogger


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_row_is_one_readable_line():
    stream = io.StringIO()
    logger = ConsoleLogger(every=0, stream=stream)
    logger.log(
        {
            "return": jnp.float32(0.532),
            "length": 10,
            "loss/policy": -1.234e-5,
            "fps": 12345.6,
            "eval": np.array([1.0, 2.0, np.nan]),
            "episode": np.nan,
        },
        12288,
    )
    assert stream.getvalue() == (
        "step 12,288 | return 0.532 | length 10.0 | loss/policy -1.23e-05 | "
        "fps 12,346 | eval 1.50 | episode -\n"
    )


def test_keys_pick_and_order_the_columns_and_a_missing_one_shows_a_dash():
    stream = io.StringIO()
    logger = ConsoleLogger(every=0, keys=["length", "return"], stream=stream)
    logger.log({"return": 1.0, "loss": 3.0}, 5)
    assert stream.getvalue() == "step 5 | length - | return 1.00\n"


def test_at_most_one_line_per_period_and_close_prints_the_held_back_row():
    stream, clock = io.StringIO(), Clock()
    logger = ConsoleLogger(every=10.0, stream=stream, clock=clock)
    for t, step in [(0.0, 1), (5.0, 2), (9.9, 3), (10.0, 4), (12.0, 5), (15.0, 6)]:
        clock.now = t
        logger.log({"x": float(step)}, step)
    # step 1: first row; 2, 3 held back (3 replaces 2); 4: 10 s after 1;
    # 5, 6 held back; close prints 6.
    assert [line.split(" |")[0] for line in stream.getvalue().splitlines()] == [
        "step 1",
        "step 4",
    ]
    logger.close()
    assert stream.getvalue().splitlines()[-1] == "step 6 | x 6.00"
    logger.close()
    assert len(stream.getvalue().splitlines()) == 3


def test_close_prints_nothing_when_the_last_row_was_printed():
    stream = io.StringIO()
    logger = ConsoleLogger(every=10.0, stream=stream, clock=Clock())
    logger.log({"x": 1.0}, 1)
    logger.close()
    assert stream.getvalue() == "step 1 | x 1.00\n"


def test_the_default_stream_is_stdout_when_printing(capsys):
    logger = ConsoleLogger()
    logger.log({"x": 2.0}, 3)
    assert capsys.readouterr().out == "step 3 | x 2.00\n"


def test_a_negative_period_is_an_error():
    with pytest.raises(ValueError, match="every must be >= 0"):
        ConsoleLogger(every=-1.0)
