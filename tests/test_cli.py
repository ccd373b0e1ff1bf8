import json
import pathlib
import struct

import pytest
from tensorboardX.proto import event_pb2

from memrl_eqx.cli import main


def read_events(path: pathlib.Path) -> list:
    """Parse a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    data = path.read_bytes()
    events, i = [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + length]))
        i += 12 + length + 4
    return events


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
    ],
)
def test_bad_options_fail_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit:
        main(argv + ["--logdir", str(tmp_path)])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())  # nothing was created


def test_train_writes_a_complete_run(tmp_path, capsys):
    code = main(
        [
            "train",
            "--env",
            "popgym::RepeatPreviousEasy",
            "--torso",
            "lru",
            "--total-steps",
            "2048",
            "--features",
            "8",
            "--num-envs",
            "4",
            "--eval-episodes",
            "2",
            "--logdir",
            str(tmp_path),
        ]
    )
    assert code == 0
    (run,) = tmp_path.iterdir()
    assert {p.name for p in run.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "learning_curve.png",
        "checkpoint.eqx",
    }
    assert json.loads((run / "config.json").read_text())["torso"] == "lru"
    rows = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    # 4 envs x 128 steps per update: 2048 steps are 4 updates, logged once each.
    assert [r["step"] for r in rows] == [512, 1024, 1536, 2048]
    (events_file,) = run.glob("events.out.tfevents.*")
    tags = {
        v.tag: v.simple_value for e in read_events(events_file) for v in e.summary.value
    }
    assert {"train/loss/policy", "train/entropy", "eval/return"} <= set(tags)
    assert -1.0 <= tags["eval/return"] <= 1.0
    assert (run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "final evaluation return" in capsys.readouterr().out


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
        + ["--total-steps", "600", "--features", "8", "--num-envs", "2"]
        + ["--eval-episodes", "1", "--logdir", str(tmp_path)]
    )
    assert code == 0
    (run,) = tmp_path.iterdir()
    rows = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows and rows[-1]["step"] >= 600
    assert (run / "checkpoint.eqx").stat().st_size > 0
