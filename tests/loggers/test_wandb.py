import json
import struct
import sys
import zlib

import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.loggers import WandbLogger


def test_a_missing_wandb_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'memrl_eqx\[wandb\]'"):
        WandbLogger(mode="offline")


def read_records(path):
    """The records of a run's `.wandb` file: a 7-byte header (`:W&B`, magic,
    version), then LevelDB-log framed chunks (crc32, length, type) in 32 KiB blocks
    holding serialised `wandb_internal.Record`s. wandb 0.31 ships no Python reader
    of its own (its `datastore` module is gone with the Go core)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, i, records, parts = 32768, 7, [], []
    while i + 7 <= len(data):
        if block - i % block < 7:  # a block's tail too short for a header
            i += block - i % block
            continue
        crc, length, kind = struct.unpack("<IHB", data[i : i + 7])
        payload = data[i + 7 : i + 7 + length]
        i += 7 + length
        if kind == 0:
            continue
        assert zlib.crc32(payload, zlib.crc32(bytes([kind]))) == crc
        parts.append(payload)
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(wandb_internal_pb2.Record.FromString(b"".join(parts)))
            parts = []
    return records


def _items(items):
    return {
        "/".join(item.nested_key) or item.key: json.loads(item.value_json)
        for item in items
    }


@pytest.fixture
def wandb(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    for name, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp_path),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield wandb
    wandb.teardown()  # stop the wandb-core service this test started


def test_offline_run_holds_the_logged_history(wandb, tmp_path):
    settings = wandb.Settings(x_disable_stats=True, x_disable_meta=True)
    with WandbLogger(
        config={"lr": 0.1}, mode="offline", dir=tmp_path, settings=settings
    ) as logger:
        logger.log({"return": jnp.float32(jnp.nan), "loss": 0.25}, 100)
        logger.log({"return": jnp.float32(0.5), "loss": np.inf}, 200)
        logger.log({"eval/return": jnp.array([1.0, 2.0, 6.0])}, 300)
        logger.log_hparams({"torso": "gru"}, {"eval/return": 3.0})
        assert logger.run.project == "memrl_eqx"
    # run.finish() can return before the wandb-core service has written the
    # run's file; stopping the service waits for it.
    wandb.teardown()
    (path,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    records = read_records(path)
    history = [
        (r.history.step.num, _items(r.history.item))
        for r in records
        if r.HasField("history")
    ]
    steps = [step for step, _ in history]
    assert steps == [100, 200, 300]
    rows = {step: row for step, row in history}
    assert rows[100]["loss"] == 0.25 and "return" not in rows[100]
    assert rows[200]["return"] == 0.5 and "loss" not in rows[200]
    assert rows[300]["eval/return"] == 3.0
    assert rows[300]["eval/return/histogram/_type"] == "histogram"
    assert sum(rows[300]["eval/return/histogram/values"]) == 3
    (run,) = [r.run for r in records if r.HasField("run")]
    config = _items(run.config.update)
    assert config["lr"] == 0.1
    updates = {}
    for r in records:
        if r.HasField("config"):
            updates.update(_items(r.config.update))
    assert updates["torso"] == "gru"
    summary = {}
    for r in records:
        if r.HasField("summary"):
            summary.update(_items(r.summary.update))
    assert summary["eval/return"] == 3.0
