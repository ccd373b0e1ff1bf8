import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx

from .helpers import tree_allclose


def _tree(key):
    return {"w": jr.normal(key, (3,)), "key": jr.split(key)[0], "n": jnp.int32(7)}


def test_roundtrip_with_typed_keys(tmp_path):
    tree = _tree(jr.key(0))
    path = tmp_path / "state.eqx"
    memrl_eqx.save_checkpoint(path, tree)
    loaded = memrl_eqx.load_checkpoint(path, _tree(jr.key(1)))
    assert tree_allclose(loaded["w"], tree["w"]) and int(loaded["n"]) == 7
    assert jnp.array_equal(jr.key_data(loaded["key"]), jr.key_data(tree["key"]))
    assert not (tmp_path / "state.eqx.tmp").exists()


def test_missing_and_mismatched_checkpoints_name_the_file(tmp_path):
    path = tmp_path / "state.eqx"
    with pytest.raises(FileNotFoundError, match="state.eqx"):
        memrl_eqx.load_checkpoint(path, _tree(jr.key(0)))
    memrl_eqx.save_checkpoint(path, _tree(jr.key(0)))
    other = {"w": jnp.zeros(4), "key": jr.key(0), "n": jnp.int32(0)}
    with pytest.raises(ValueError, match="state.eqx"):
        memrl_eqx.load_checkpoint(path, other)


def test_metadata_round_trips_and_the_file_is_checked_first(tmp_path):
    path = tmp_path / "state.eqx"
    memrl_eqx.save_checkpoint(path, _tree(jr.key(0)), metadata={"step": 512})
    assert memrl_eqx.read_checkpoint_metadata(path) == {"step": 512}
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(ValueError, match="state.eqx.*is truncated"):
        memrl_eqx.read_checkpoint_metadata(path)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ValueError, match="state.eqx.*is corrupt.*CRC"):
        memrl_eqx.load_checkpoint(path, _tree(jr.key(0)))
    path.write_bytes(b"\x93NUMPY" + data)
    with pytest.raises(ValueError, match="not a memrl_eqx checkpoint"):
        memrl_eqx.load_checkpoint(path, _tree(jr.key(0)))


def test_another_structure_names_the_first_array_that_differs(tmp_path):
    path = tmp_path / "state.eqx"
    memrl_eqx.save_checkpoint(path, _tree(jr.key(0)))
    other = {"w": jnp.zeros(4), "key": jr.key(0), "n": jnp.int32(0)}
    with pytest.raises(ValueError, match=r"\['w'\] of shape \(3,\).*\(4,\)"):
        memrl_eqx.load_checkpoint(path, other)
    fewer = {"key": jr.key(0), "n": jnp.int32(0)}
    with pytest.raises(ValueError, match="3 arrays where 2 are expected"):
        memrl_eqx.load_checkpoint(path, fewer)
