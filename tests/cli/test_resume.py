"""A run killed partway and resumed ends exactly as an uninterrupted run does."""

import os
import signal
import subprocess
import sys
import threading
import time

import equinox as eqx
import pytest

import memrl_eqx
import memrl_eqx.cli
from memrl_eqx.cli import _run
from memrl_eqx.cli._build import build_seeds, init_states

from ..helpers import fast_compile, FAST_XLA_FLAGS
from . import _runs


UPDATES = 40  # logs; one checkpoint every second one
TOTAL = 512 * UPDATES


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, compiled as the tests and their subprocess compile."""
    run = tmp_path_factory.mktemp("reference") / "run"
    with fast_compile():
        assert _runs.train(run, TOTAL) == 0
    return run


def _state(run):
    """The run's checkpointed training state and the checkpoint's metadata."""
    seeds = build_seeds(_run.read_resolved(str(run)))
    path = run / "checkpoint.eqx"
    state = memrl_eqx.load_checkpoint(path, init_states(seeds, 0))
    return state, memrl_eqx.read_checkpoint_metadata(path)


def _when_checkpointed(run, act) -> threading.Thread:
    """Call `act()` from a thread as soon as the run's first checkpoint exists."""

    def watch():
        deadline = time.monotonic() + 300
        while not (run / "checkpoint.eqx").exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        act()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _check_resumes_exactly(run, reference):
    _, meta = _state(run)
    assert 2 <= meta["updates"] < UPDATES  # stopped partway, after a checkpoint
    assert meta["step"] == 512 * meta["updates"]
    assert len(_runs.rows(run)) >= meta["updates"]  # rows past it may exist

    assert memrl_eqx.cli.main(["train", "--resume", str(run)]) == 0
    # The resumed run started from the checkpoint: one row per step, in order,
    # none lost or duplicated, and every value as the uninterrupted run logged it.
    assert _runs.rows(run) == _runs.rows(reference)
    assert [r["step"] for r in _runs.rows(run)[:UPDATES]] == [
        512 * (i + 1) for i in range(UPDATES)
    ]
    final, final_meta = _state(run)
    expected, expected_meta = _state(reference)
    assert final_meta == expected_meta
    assert bool(eqx.tree_equal(final, expected))  # bit for bit
    evaluation = (run / "evaluation.json").read_text()
    assert evaluation == (reference / "evaluation.json").read_text()


def test_a_killed_run_resumes_exactly(reference, tmp_path):
    """SIGKILL in another process: no chance to save anything at the end."""
    run = tmp_path / "run"
    argv = ["train", *_runs.SMALL, "--total-steps", str(TOTAL), "--run-dir", str(run)]
    process = subprocess.Popen(
        [sys.executable, "-m", "memrl_eqx", *argv],
        # Compiled as the tests compile, so its numbers are the reference's.
        env={
            **os.environ,
            "JAX_OPTIMIZATION_LEVEL": "O0",
            "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FAST_XLA_FLAGS}",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _when_checkpointed(run, process.kill).join()
    _, err = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, err
    _check_resumes_exactly(run, reference)


def test_ctrl_c_checkpoints_and_resumes_exactly(reference, tmp_path, capsys):
    """SIGINT: the run saves its last whole chunk and says how to go on."""
    run = tmp_path / "run"
    _when_checkpointed(run, lambda: os.kill(os.getpid(), signal.SIGINT))
    assert _runs.train(run, TOTAL) == 130
    assert f"memrl-eqx train --resume {run}" in capsys.readouterr().err
    _check_resumes_exactly(run, reference)
