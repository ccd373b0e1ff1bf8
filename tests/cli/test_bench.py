"""`memrl-eqx bench popgym`: the options and files it reads, the bench
directory it fills, resuming it, and its errors."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from memrl_eqx.cli import _bench as B, _options as O, main


PRESET = os.path.join(os.path.dirname(__file__), "../../examples/configs")
PRESET = os.path.normpath(os.path.join(PRESET, "ppo_popgym.toml"))
# One seed of an MLP on RepeatFirstEasy: 16 updates of 4 envs x 32 steps.
SMALL = ["--torsos", "mlp", "--tasks", "RepeatFirstEasy", "--seeds", "1"]
SMALL += ["--total-steps", "2048", "--features", "8", "--eval-episodes", "2"]
for _assignment in ("num_envs=4", "num_steps=32", "num_minibatches=2"):
    SMALL += ["--set", _assignment]
SMALL += ["--set", "update_epochs=1"]


def _bench(out, *extra) -> int:
    return main(["bench", "popgym", "--out", str(out), *SMALL, *extra])


def _records(out) -> list[dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_the_defaults_are_the_preset_file():
    defaults, _ = B.resolve(None, {}, [])
    preset, ignored = B.resolve(O.read_file(PRESET, B.KNOWN), {}, [])
    from memrl_eqx.cli._build import make_config

    full = lambda resolved: make_config("ppo", resolved["config"])[1]
    assert full(preset) == full(defaults) and full(defaults)["gae_lambda"] == 0.8
    assert defaults["config"] == {"gae_lambda": 0.8}  # the rest: PPOConfig's
    assert preset["optimizer"] == defaults["optimizer"]
    assert defaults["optimizer"]["learning_rate"] == 1e-3
    assert preset["options"]["features"] == defaults["options"]["features"] == 128
    assert sorted(ignored) == ["env", "torso"]
    # The Python function's defaults are the command line's.
    import inspect

    from memrl_eqx.bench import popgym

    params = inspect.signature(popgym).parameters
    for name, value in O.BENCH_DEFAULTS.items():
        assert params[name].default == value, name


def test_a_bench_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "bench"
    assert _bench(out, "--set", "optimizer.learning_rate=5e-4") == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{out}/results.md"
    assert "train mlp RepeatFirstEasy" in captured.err
    (record,) = _records(out)
    assert (record["torso"], record["task"], record["status"]) == (
        "mlp",
        "RepeatFirstEasy",
        "ok",
    )
    assert record["steps_trained"] == 2048 and record["features"] == 8
    assert record["config"]["gae_lambda"] == 0.8  # the bench's default
    assert record["config"]["num_envs"] == 4  # the command line's
    assert record["optimizer"]["learning_rate"] == 5e-4
    assert (out / "results.md").exists()

    # The same command again finds every cell finished.
    assert _bench(out, "--set", "optimizer.learning_rate=5e-4") == 0
    assert "skip mlp RepeatFirstEasy" in capsys.readouterr().err
    assert len(_records(out)) == 1

    # Other settings are refused, naming the directory, unless --overwrite.
    with pytest.raises(SystemExit) as exit:
        _bench(out)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and str(out) in err and "--overwrite" in err
    assert "learning_rate" in err
    assert len(_records(out)) == 1  # nothing lost
    assert _bench(out, "--overwrite") == 0
    assert _records(out)[0]["optimizer"]["learning_rate"] == 1e-3


def test_a_preset_file_with_overrides(tmp_path, capsys):
    out = tmp_path / "bench"
    assert _bench(out, "--config", PRESET, "--set", "gae_lambda=0.9") == 0
    err = capsys.readouterr().err
    assert "the file's env, torso are not used" in err
    (record,) = _records(out)
    assert record["config"]["gae_lambda"] == 0.9
    assert record["features"] == 8  # the command line wins over the file


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--torsos", "gru,grux"], "torsos: unknown torso 'grux' (did you mean gru"),
        (["--tasks", "RepeatFirst"], "unknown task 'RepeatFirst'"),
        (["--set", "gae_lamda=0.9"], "PPOConfig has no field 'gae_lamda'"),
        (["--set", "optimizer.kind=adagrad"], "optimizer.kind: 'adagrad'"),
    ],
)
def test_bad_options_are_named(tmp_path, capsys, extra, message):
    out = tmp_path / "bench"
    with pytest.raises(SystemExit) as exit:
        _bench(out, *extra)
    assert exit.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_a_file_for_another_algorithm_is_refused(tmp_path, capsys):
    path = tmp_path / "dqn.toml"
    path.write_text('algorithm = "dqn"\n')
    with pytest.raises(SystemExit):
        _bench(tmp_path / "bench", "--config", str(path))
    assert "the POPGym bench trains ppo, got 'dqn'" in capsys.readouterr().err


def test_an_interrupted_bench_continues_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "memrl_eqx", "bench", "popgym"]
    command += ["--out", str(out), *SMALL, "--total-steps", "5248"]  # 41 updates
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "cells" / "mlp-RepeatFirstEasy" / "state.ckpt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "interrupted" in err and "memrl-eqx bench popgym --out" in err
    assert not (out / "results.jsonl").exists()

    # The same command continues the cell from its last checkpoint.
    assert main(command[3:]) == 0
    err = capsys.readouterr().err
    assert "resume mlp RepeatFirstEasy from its checkpoint at chunk" in err
    (record,) = _records(out)
    # 41 updates exactly: 13 chunks of 3, then one of 2.
    assert record["steps_trained"] == 5248 and len(record["steps"]) == 41
