import json

import pytest

from memrl_eqx.cli import main

from ..helpers import read_events


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--env", "gymnax::CartPol"], "CartPole-v1"),
        (["train", "--env", "nowhere::x"], "gymnax, popgym"),
        (["train", "--torso", "tcn"], "choose from 'delta_net', 'dnc'"),
        (["train", "--total-steps", "-5"], "positive integer"),
        (["train", "--algorithm", "a2c"], "'ppo'"),
        (["train", "--algorithm", "sac"], "sac needs continuous ones"),
        (
            ["train", "--algorithm", "dqn", "--env", "gymnax::Pendulum-v1"],
            "dqn needs discrete ones",
        ),
        (["train", "--loggers", "console,slack"], "unknown logger 'slack'"),
        (["train", "--resume", "x", "--run-dir", "y"], "not allowed with"),
        (["train", "--set", "gama=0.9"], "PPOConfig has no field 'gama' (did you mean"),
        (["train", "--set", "gamma"], "expected FIELD=VALUE"),
        (["train", "--set", "gamma=abc"], "PPOConfig.gamma takes a float, got 'abc'"),
        (["train", "--set", "num_steps=1.5"], "PPOConfig.num_steps takes an int"),
        (["train", "--set", "gamma=1.5"], "PPOConfig: `gamma` must lie in [0, 1]"),
        (["train", "--num-envs", "6"], "must divide `num_envs` (6)"),
        (
            ["train", "--algorithm", "r2d2", "--set", "burnin_length=4"],
            "DQNConfig.r2d2() has no field 'burnin_length' (did you mean burn_in",
        ),
        (["train", "--set", "optimizer.lr=1"], "unknown optimizer field"),
        (["train", "--set", "optimizer.kind=adagrad"], "'adagrad' is not one of adam"),
        (["train", "--set", "optimizer.weight_decay=0.1"], "only kind 'adamw'"),
        (["train", "--warmup-steps", "100"], "ppo learns on-policy and has no warm-up"),
        (["train", "--config", "nowhere.toml"], "'nowhere.toml' does not exist"),
    ],
)
def test_bad_options_fail_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit:
        main(argv + ["--logdir", str(tmp_path)] if "--run-dir" not in argv else argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())  # nothing was created


def test_a_missing_logger_package_is_named_before_anything_starts(
    monkeypatch, capsys, tmp_path
):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "wandb" else find_spec(n, *a),
    )
    with pytest.raises(SystemExit):
        main(["train", "--loggers", "console,wandb", "--logdir", str(tmp_path)])
    assert "pip install 'memrl_eqx[wandb]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_run_logs_every_update_to_file_and_tensorboard(finished):
    rows = [
        json.loads(x) for x in (finished / "metrics.jsonl").read_text().splitlines()
    ]
    # 4 envs x 128 steps per update: 2048 steps are 4 updates, logged once each,
    # then the evaluation's mean return.
    assert [r["step"] for r in rows] == [512, 1024, 1536, 2048, 2048]
    assert {"return", "loss/policy", "entropy"} <= set(rows[0])
    assert set(rows[-1]) == {"step", "eval/return", "seed"}
    assert {r["seed"] for r in rows} == {0}
    (events_file,) = finished.glob("events.out.tfevents.*")
    values = [(e.step, v) for e in read_events(events_file) for v in e.summary.value]
    scalars = {
        (v.tag, step): v.simple_value
        for step, v in values
        if v.HasField("simple_value")
    }
    for row in rows[:4]:
        assert scalars[("loss/policy", row["step"])] == pytest.approx(
            row["loss/policy"]
        )
    histogram = next(v.histo for _, v in values if v.HasField("histo"))
    assert histogram.num == 2 and -1.0 <= histogram.min <= histogram.max <= 1.0
    assert scalars[("eval/return", 2048)] == pytest.approx(rows[-1]["eval/return"])


def test_progress_off_a_terminal_is_a_line_per_chunk_and_console_lines_are_opt_in(
    tmp_path, capsys
):
    argv = ["train", "--torso", "mlp", "--features", "8", "--num-envs", "4"]
    argv += ["--total-steps", "1024", "--log-every", "512", "--eval-episodes", "1"]
    assert main(argv + ["--run-dir", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    # No progress bar in a log file, but one line per chunk on stderr.
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2, captured.err
    assert lines[0].startswith("ppo/mlp: step 512/1,024 (50%)")
    assert lines[1].startswith("ppo/mlp: step 1,024/1,024 (100%)")
    assert all("steps/s" in line and "ETA" in line for line in lines)
    assert "final evaluation return" in captured.out
    assert main(argv + ["--run-dir", str(tmp_path / "b"), "--loggers", "console"]) == 0
    out = capsys.readouterr().out
    assert "step 512" in out and "return" in out


@pytest.mark.parametrize(
    "algorithm, env",
    [
        ("dqn", "gymnax::CartPole-v1"),
        ("r2d2", "popgym::RepeatPreviousEasy"),
        ("pqn", "gymnax::CartPole-v1"),
        ("sac", "gymnax::Pendulum-v1"),
        ("sacd", "gymnax::CartPole-v1"),
        ("ppo", "gymnax::Pendulum-v1"),
    ],
)
def test_every_algorithm_trains_from_the_command_line(algorithm, env, tmp_path):
    code = main(
        ["train", "--algorithm", algorithm, "--env", env, "--torso", "mlp"]
        + ["--total-steps", "600", "--features", "8", "--num-envs", "4"]
        + ["--eval-episodes", "1", "--logdir", str(tmp_path)]
    )
    assert code == 0
    (run,) = tmp_path.iterdir()
    rows = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    # Whole updates up to 600 steps (plus a replay method's warm-up), not the
    # 32,768 of a whole --log-every: a run shorter than a log is one chunk.
    train_steps = [r["step"] for r in rows if "eval/return" not in r]
    assert 600 <= train_steps[-1] < 4096
    assert (run / "checkpoint.eqx").stat().st_size > 0
