"""Bad run directories, checkpoints and options fail with one line naming the
file and the problem, and leave what exists untouched."""

import json
import shutil

import pytest

from memrl_eqx.cli import main

from . import _runs


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished run to spoil."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def _fails(argv, capsys, *fragments):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _snapshot(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_a_finished_run_holds_everything(finished):
    names = {p.name for p in finished.iterdir()}
    assert {
        "config.json",
        "metrics.jsonl",
        "checkpoint.eqx",
        "evaluation.json",
        "learning_curve.png",
    } <= names
    config = json.loads((finished / "config.json").read_text())
    assert config["options"]["features"] == 8
    assert config["config"]["num_envs"] == 4  # the resolved PPOConfig
    assert config["config"]["num_steps"] == 128  # its default
    assert config["optimizer"] == {
        "kind": "adam",
        "learning_rate": 3e-4,
        "max_grad_norm": 0.5,
        "eps": 1e-5,
        "weight_decay": 0.0,
        "schedule": "constant",
        "decay_steps": None,
    }
    assert {"memrl_eqx", "jax"} <= set(config["versions"])
    evaluation = json.loads((finished / "evaluation.json").read_text())
    assert evaluation["seeds"] == [0] and evaluation["step"] == 2048
    assert len(evaluation["returns"]) == 1 and len(evaluation["returns"][0]) == 2


def test_resume_of_a_missing_or_foreign_directory(tmp_path, capsys):
    _fails(
        ["train", "--resume", str(tmp_path / "nope")], capsys, "nope", "does not exist"
    )
    _fails(["train", "--resume", str(tmp_path)], capsys, "not a run directory")


def test_resume_without_a_checkpoint(run, capsys):
    (run / "checkpoint.eqx").unlink()
    _fails(
        ["train", "--resume", str(run)], capsys, "checkpoint.eqx", "first checkpoint"
    )


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (lambda b: b[: len(b) - 100], "is truncated"),
        (lambda b: b[:-5] + bytes(x ^ 0xFF for x in b[-5:]), "is corrupt"),
        (lambda b: b"not a checkpoint\n" + b, "not a memrl_eqx checkpoint"),
    ],
    ids=["truncated", "flipped-bytes", "foreign"],
)
@pytest.mark.parametrize("command", ["resume", "evaluate"])
def test_a_damaged_checkpoint_is_named_and_kept(run, capsys, spoil, problem, command):
    path = run / "checkpoint.eqx"
    path.write_bytes(spoil(path.read_bytes()))
    before = _snapshot(run)
    argv = (
        ["train", "--resume", str(run), "--total-steps", "4096"]
        if command == "resume"
        else ["evaluate", str(run)]
    )
    _fails(argv, capsys, str(path), problem)
    assert _snapshot(run) == before  # nothing overwritten


def test_a_config_that_does_not_match_the_checkpoint(run, capsys):
    path = run / "config.json"
    config = json.loads(path.read_text())
    config["options"]["features"] = 16
    path.write_text(json.dumps(config))
    before = _snapshot(run)
    _fails(
        ["train", "--resume", str(run), "--total-steps", "4096"],
        capsys,
        "checkpoint.eqx",
        "features=8",
        "features=16",
    )
    _fails(["evaluate", str(run)], capsys, "features=8", "features=16")
    assert _snapshot(run) == before


def test_resume_keeps_the_runs_identity(run, capsys):
    before = _snapshot(run)
    _fails(
        ["train", "--resume", str(run), "--features", "16"],
        capsys,
        "--features 16",
        "was trained with 8",
    )
    _fails(["train", "--resume", str(run)], capsys, "already trained", "--total-steps")
    _fails(["train", "--resume", str(run), "--overwrite"], capsys, "--overwrite")
    assert _snapshot(run) == before


def test_an_existing_run_is_never_overwritten_unless_asked(run, tmp_path, capsys):
    before = _snapshot(run)
    argv = ["train", *_runs.SMALL, "--total-steps", "512", "--run-dir", str(run)]
    _fails(argv, capsys, str(run), "already exists", "--overwrite")
    assert _snapshot(run) == before
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    argv = ["train", *_runs.SMALL, "--run-dir", str(other), "--overwrite"]
    _fails(argv, capsys, "not a run directory", "refusing")
    assert (other / "cat.jpg").read_bytes() == b"meow"


def test_an_unwritable_log_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _fails(
        ["train", *_runs.SMALL, "--logdir", str(blocker / "runs")],
        capsys,
        "cannot create the run directory",
        str(blocker),
    )


def test_overwrite_replaces_a_run(run, capsys):
    assert _runs.train(run, 512, "--overwrite") == 0
    assert [r["step"] for r in _runs.rows(run)] == [512, 512]  # update, evaluation
    capsys.readouterr()


def test_resume_with_more_steps_continues_the_run(run, capsys):
    assert main(["train", "--resume", str(run), "--total-steps", "3072"]) == 0
    steps = [r["step"] for r in _runs.rows(run) if "return" in r]
    assert steps == [512, 1024, 1536, 2048, 2560, 3072]
    assert "resuming" in capsys.readouterr().out
