import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.loggers import rows, to_python


def test_to_python_makes_floats_and_float_arrays_in_the_callers_order():
    values = to_python(
        {
            "z": jnp.float32(0.1),
            "a": 3,
            "flag": np.bool_(True),
            "sample": jnp.arange(3, dtype=jnp.int32),
            "half": jnp.array([0.5, 0.25], dtype=jnp.bfloat16),
            "nan": jnp.float32(jnp.nan),
        }
    )
    assert list(values) == ["z", "a", "flag", "sample", "half", "nan"]
    # float32 0.1 is written as 0.1, not 0.10000000149011612
    assert values["z"] == 0.1 and type(values["z"]) is float
    assert values["a"] == 3.0 and type(values["a"]) is float
    assert values["flag"] == 1.0
    assert isinstance(values["sample"], np.ndarray)
    assert values["sample"].dtype == np.float64
    np.testing.assert_array_equal(values["sample"], [0.0, 1.0, 2.0])
    assert values["half"].dtype == np.float32
    np.testing.assert_array_equal(values["half"], [0.5, 0.25])
    assert np.isnan(values["nan"])


def test_to_python_copies_from_the_device_once(monkeypatch):
    calls = []
    device_get = jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda x: calls.append(x) or device_get(x))
    to_python({"a": jnp.ones(()), "b": jnp.zeros(3), "c": 1.0})
    assert len(calls) == 1


@pytest.mark.parametrize(
    "value", ["high", None, {"nested": 1.0}, 1 + 2j, np.array(["a"])]
)
def test_to_python_names_the_key_of_a_value_that_is_not_numeric(value):
    with pytest.raises(TypeError, match="'bad'"):
        to_python({"ok": 1.0, "bad": value})


def test_to_python_rejects_keys_that_are_not_strings():
    # (the jaxtyping hook of the test suite reports it first, as Mapping[str, ...])
    with pytest.raises(TypeError, match="str"):
        to_python({3: 1.0})


def test_rows_splits_stacked_metrics_into_one_row_per_update():
    metrics = {
        "step": jnp.array([128, 256, 384], dtype=jnp.int32),
        "return": jnp.array([jnp.nan, 0.1, 0.5], dtype=jnp.float32),
        "loss": jnp.array([1.0, 0.5, 0.25], dtype=jnp.float32),
    }
    out = rows(metrics)
    assert [step for step, _ in out] == [128, 256, 384]
    assert all(type(step) is int for step, _ in out)
    assert [set(row) for _, row in out] == [{"return", "loss"}] * 3
    assert np.isnan(out[0][1]["return"])
    assert out[1][1] == {"return": 0.1, "loss": 0.5}
    assert all(type(v) is float for _, row in out for v in row.values())


def test_rows_takes_another_step_key():
    out = rows({"t": np.array([1, 2]), "x": np.array([3.0, 4.0])}, step_key="t")
    assert out == [(1, {"x": 3.0}), (2, {"x": 4.0})]


def test_rows_names_the_missing_step_key_and_a_key_of_another_length():
    with pytest.raises(ValueError, match="no 'step' entry"):
        rows({"return": jnp.zeros(3)})
    with pytest.raises(ValueError, match="'loss' has shape \\(2,\\).*\\(3,\\)"):
        rows({"step": jnp.arange(3), "return": jnp.zeros(3), "loss": jnp.zeros(2)})
    with pytest.raises(ValueError, match="'step' has shape \\(\\); expected"):
        rows({"step": 3, "x": 1.0})
    with pytest.raises(ValueError, match="'step'\\[1\\] = 1.5 is not a whole number"):
        rows({"step": jnp.array([1.0, 1.5]), "x": jnp.zeros(2)})
