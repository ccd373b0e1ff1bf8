"""`memrl-eqx train --algorithm ippo|mappo|stream_ac`: multi-agent PPO on the
jaxmarl:: adapter, the streaming actor-critic (which has no optimiser), and the
messages for an environment or an option of the wrong kind."""

import json

import pytest

from memrl_eqx.cli import main

from . import _runs


# 2 envs x 16 steps an update, 4 updates of 3 agents each.
SMALL = ["--features", "8", "--num-envs", "2", "--set", "num_steps=16"]
SMALL += ["--set", "num_minibatches=1", "--set", "update_epochs=1"]
SMALL += ["--total-steps", "128", "--log-every", "32", "--eval-episodes", "2"]


def test_mappo_trains_on_its_default_environment(tmp_path):
    run = tmp_path / "run"
    extra = ["--set", "share_parameters=false", "--seeds", "2"]
    assert (
        main(["train", "--algorithm", "mappo", *SMALL, *extra, "--run-dir", str(run)])
        == 0
    )
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["env"] == "jaxmarl::MPE_simple_spread_v3"
    assert config["config"]["share_parameters"] is False
    rows = _runs.rows(run)
    assert sorted({(r["step"], int(r["seed"])) for r in rows if "return" in r}) == [
        (step, seed) for step in (32, 64, 96, 128) for seed in (0, 1)
    ]
    # MPE's rewards are negative distances: every agent's mean return is < 0.
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert len(evaluation["return_mean_per_seed"]) == 2
    assert all(r < 0 for seed in evaluation["returns"] for r in seed)
    # Evaluated and resumed like any other run.
    assert main(["evaluate", str(run), "--episodes", "2"]) == 0
    assert main(["train", "--resume", str(run), "--total-steps", "160"]) == 0
    assert max(r["step"] for r in _runs.rows(run)) == 160


def test_stream_ac_trains_without_an_optimiser(tmp_path):
    run = tmp_path / "run"
    args = ["--algorithm", "stream_ac", "--env", "gymnax::CartPole-v1"]
    args += ["--torso", "mlp", "--features", "8", "--set", "num_steps=100"]
    args += ["--total-steps", "300", "--log-every", "100", "--eval-episodes", "2"]
    assert main(["train", *args, "--set", "actor_lr=0.5", "--run-dir", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["optimizer"] == {"kind": "none"}
    assert config["config"]["actor_lr"] == 0.5 and config["config"]["num_envs"] == 1
    assert [r["step"] for r in _runs.rows(run) if "loss" in r or "return" in r][
        -1
    ] == 300


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--algorithm", "ippo", "--env", "popgym::RepeatFirstEasy"],
            "env: popgym::RepeatFirstEasy has one agent; ippo needs a multi-agent",
        ),
        (
            ["--env", "jaxmarl::MPE_simple_spread_v3"],
            "has 3 agents on a leading axis; ppo trains one agent (use --algorithm "
            "ippo or mappo)",
        ),
        (
            ["--algorithm", "ippo", "--set", "share_parameter=true"],
            "IPPOConfig has no field 'share_parameter' (did you mean share_parameters",
        ),
        (
            ["--algorithm", "stream_ac", "--learning-rate", "0.1"],
            "optimizer.learning_rate: stream_ac has no optimiser; its step sizes are "
            "fields of StreamACConfig",
        ),
    ],
)
def test_an_environment_or_option_of_the_wrong_kind_is_named(
    tmp_path, capsys, args, message
):
    with pytest.raises(SystemExit) as exit:
        main(["train", *args, "--run-dir", str(tmp_path / "run")])
    assert exit.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
