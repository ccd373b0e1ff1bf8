"""Runs driven by config files, `--set`, `--seeds` and `--eval-every`; what
they write, and that a run's `config.json` trains the same run again."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from memrl_eqx.cli import main

from ..helpers import fast_compile
from . import _runs


TOML = """\
algorithm = "ppo"
env = "popgym::RepeatPreviousEasy"
torso = "gru"
features = 8
total_steps = 2000      # 4 updates of 4 envs x 128 steps, rounded up from 2000
log_every = 512
eval_episodes = 2

[config]
num_envs = 4
gamma = 0.5             # overridden on the command line

[optimizer]
learning_rate = 1e-3
schedule = "linear"
"""


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    """`--config F.toml --set gamma=0.9 --seeds 2 --eval-every 1024`."""
    folder = tmp_path_factory.mktemp("seeds")
    (folder / "f.toml").write_text(TOML)
    run = folder / "run"
    argv = ["train", "--config", str(folder / "f.toml"), "--set", "gamma=0.9"]
    argv += ["--seeds", "2", "--eval-every", "1024", "--run-dir", str(run)]
    with fast_compile():
        assert main(argv) == 0
    return run


def test_the_config_json_holds_everything_resolved(seeds_run):
    config = json.loads((seeds_run / "config.json").read_text())
    options = config["options"]
    assert options["features"] == 8 and options["seeds"] == 2
    assert options["eval_every"] == 1024 and options["total_steps"] == 2000
    assert config["config"]["gamma"] == 0.9  # the command line wins over the file
    assert config["config"]["num_envs"] == 4  # the file's
    assert config["config"]["gae_lambda"] == 0.95  # PPOConfig's default
    optimizer = config["optimizer"]
    assert optimizer["learning_rate"] == 1e-3 and optimizer["schedule"] == "linear"
    # 4 updates x 4 epochs x 4 minibatches: the schedule spans the whole run.
    assert optimizer["decay_steps"] == 4 * 4 * 4
    assert optimizer["kind"] == "adam" and optimizer["max_grad_norm"] == 0.5


def test_rows_carry_the_seed_and_evaluations_are_periodic(seeds_run):
    rows = _runs.rows(seeds_run)
    training = [r for r in rows if "return" in r]
    assert [(r["step"], r["seed"]) for r in training] == [
        (step, seed) for step in (512, 1024, 1536, 2048) for seed in (0, 1)
    ]
    evaluations = [(r["step"], r["seed"]) for r in rows if "eval/return" in r]
    # Every 1024 steps, and the final one.
    assert evaluations == [(1024, 0), (1024, 1), (2048, 0), (2048, 1)]
    evaluation = json.loads((seeds_run / "evaluation.json").read_text())
    assert evaluation["seeds"] == [0, 1]
    assert [len(r) for r in evaluation["returns"]] == [2, 2]
    per_seed = [sum(r) / 2 for r in evaluation["returns"]]
    assert evaluation["return_mean_per_seed"] == pytest.approx(per_seed)
    assert evaluation["return_mean"] == pytest.approx(sum(per_seed) / 2)
    final = {
        r["seed"]: r["eval/return"]
        for r in rows
        if r.get("step") == 2048 and "eval/return" in r
    }
    assert [final[0], final[1]] == pytest.approx(per_seed)


def test_the_seeds_differ(seeds_run):
    rows = [r for r in _runs.rows(seeds_run) if "loss/policy" in r]
    by_seed = {s: [r["loss/policy"] for r in rows if r["seed"] == s] for s in (0, 1)}
    assert by_seed[0] != by_seed[1]


def test_config_json_trains_the_same_run_again(seeds_run, tmp_path, capsys):
    again = tmp_path / "again"
    config = str(seeds_run / "config.json")
    assert main(["train", "--config", config, "--run-dir", str(again)]) == 0
    assert _runs.rows(again) == _runs.rows(seeds_run)
    first = json.loads((seeds_run / "config.json").read_text())
    second = json.loads((again / "config.json").read_text())
    for section in ("options", "config", "optimizer"):
        assert first[section] == second[section]
    capsys.readouterr()


def test_a_multi_seed_run_evaluates_resumes_and_plots(seeds_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(seeds_run, run)
    assert main(["evaluate", str(run), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "seed 0: return" in out and "seed 1: return" in out
    assert "mean return over 2 seeds" in out
    assert main(["train", "--resume", str(run), "--total-steps", "2560"]) == 0
    steps = [(r["step"], r["seed"]) for r in _runs.rows(run) if "return" in r]
    assert steps[-2:] == [(2560, 0), (2560, 1)] and len(steps) == 10
    png = tmp_path / "curves.png"
    assert main(["plot", str(run), "--output", str(png)]) == 0
    assert png.stat().st_size > 10_000
    capsys.readouterr()


def test_total_steps_round_to_whole_updates_and_the_last_chunk_is_shorter(
    tmp_path, capsys
):
    # 512-step updates, logged every 3: 2,000 steps are 4 updates, in chunks of 3
    # and 1.
    argv = ["--log-every", "1536"]
    assert _runs.train(tmp_path / "r", 2000, *argv) == 0
    captured = capsys.readouterr()
    steps = [r["step"] for r in _runs.rows(tmp_path / "r") if "return" in r]
    assert steps == [512, 1024, 1536, 2048]
    progress = captured.err.strip().splitlines()
    assert [line.split(" (")[0] for line in progress] == [
        "ppo/gru: step 1,536/2,048",
        "ppo/gru: step 2,048/2,048",
    ]
    assert "trained 2,048 steps (4 updates; --total-steps 2,000 rounded up" in (
        captured.out
    )


def test_a_replay_methods_warmup_is_counted_apart(tmp_path, capsys):
    argv = ["train", "--algorithm", "dqn", "--env", "gymnax::CartPole-v1"]
    argv += ["--torso", "mlp", "--features", "8", "--total-steps", "64"]
    argv += ["--set", "batch_size=8", "--warmup-steps", "100", "--eval-episodes", "1"]
    assert main(argv + ["--run-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    # 16 envs x 1 step an update: 64 steps, after 100 warm-up steps rounded up to
    # whole updates (112).
    assert "trained 64 steps (4 updates), after 112 warm-up steps" in out
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["config"]["n_step"] == 1  # DQNConfig's default, not the CLI's own


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tmp_path, capsys):
    run = tmp_path / "run"

    def interrupt():
        deadline = time.monotonic() + 120
        while not (run / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    assert _runs.train(run, 512 * 100, "--checkpoint-every", "51200") == 130
    thread.join()
    err = capsys.readouterr().err
    assert "nothing was saved" in err and "checkpointed" not in err
    command = re.search(r"`(memrl-eqx train .*)`", err).group(1)
    assert "--features 8" in command and command.endswith("--overwrite")
    assert not (run / "checkpoint.eqx").exists()


def _envs(*args):
    return subprocess.run(
        [sys.executable, "-m", "memrl_eqx", "envs", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_envs_prints_only_ids_on_stdout():
    result = _envs()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "popgym::RepeatFirstEasy" in lines and "gymnax::CartPole-v1" in lines
    bad = [line for line in lines if not re.fullmatch(r"[\w]+::\S+", line)]
    assert not bad, bad


def test_envs_verbose_says_the_action_kind_and_observation_shape(capsys):
    assert main(["envs", "gymnax", "--verbose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gymnax::CartPole-v1  discrete(2)  obs (4,)" in lines
    assert "gymnax::Pendulum-v1  continuous(1,)  obs (3,)" in lines
