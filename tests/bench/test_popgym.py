"""`memrl_eqx.bench.popgym`: the bench directory, MMER, resuming, refusing to
overwrite, NaN handling, and the published table."""

import json
import math
import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.algorithms import PPOConfig
from memrl_eqx.bench import (
    BenchError,
    BUDGET,
    CITATION,
    mmer,
    popgym,
    PUBLISHED,
    published_mmer,
)
from memrl_eqx.envs import list_envs

from ..helpers import fast_compile


TASKS = ["RepeatFirstEasy", "StatelessCartPoleEasy"]
TORSOS = ["gru", "mlp"]
# 16 updates of 128 steps per seed, one update per chunk (16 chunks).
SETTINGS = dict(
    seeds=2,
    total_steps=2048,
    config=PPOConfig(num_envs=4, num_steps=32, num_minibatches=2, update_epochs=1),
    features=16,
    eval_episodes=4,
)


class Log:
    """Collects the log lines; `stop_at` raises KeyboardInterrupt on the first
    line containing it (an interruption after that point)."""

    def __init__(self, stop_at: str | None = None):
        self.lines: list[str] = []
        self.stop_at = stop_at

    def __call__(self, line: str):
        self.lines.append(line)
        if self.stop_at is not None and self.stop_at in line:
            raise KeyboardInterrupt

    def starting(self, word: str) -> list[str]:
        return [line for line in self.lines if line.startswith(word)]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A finished bench: 2 tasks x gru, mlp x 2 seeds; its log."""
    out = tmp_path_factory.mktemp("bench") / "popgym"
    log = Log()
    with fast_compile():  # module fixtures precede the per-test one
        records = popgym(out, torsos=TORSOS, tasks=TASKS, log=log, **SETTINGS)
    return out, records, log


def _records(out):
    lines = (out / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# ------------------------------------------------------------------ MMER
def test_mmer_is_the_maximum_of_the_batch_means():
    # Episodes ending in each of 5 training batches (none in the first).
    batches = [[], [-1.0, 0.0], [0.5, 0.25, 0.75], [1.0, -1.0], [0.0]]
    means = [np.mean(b) if b else np.nan for b in batches]  # nan, -.5, .5, 0, 0
    best = -math.inf
    for m in means:  # by hand
        if not math.isnan(m):
            best = max(best, m)
    assert best == 0.5
    assert mmer(means) == best
    # Per seed; a seed whose episodes never ended has no MMER.
    two = mmer(np.stack([means, np.full(5, np.nan)]))
    assert two.shape == (2,) and two[0] == 0.5 and math.isnan(two[1])
    with pytest.raises(ValueError, match="infinite"):
        mmer([0.0, np.inf])
    with pytest.raises(ValueError, match="shape"):
        mmer(np.zeros((2, 2, 2)))


# ------------------------------------------------------------------ directory
def test_the_bench_directory(bench):
    out, returned, log = bench
    records = _records(out)
    assert records == returned
    cells = {(r["torso"], r["task"], r["seed"]) for r in records}
    assert cells == {(t, k, s) for t in TORSOS for k in TASKS for s in range(2)}
    keys = {"torso", "task", "seed", "mmer", "eval_return", "total_steps"}
    keys |= {"seconds", "versions", "config", "optimizer", "status", "level"}
    for r in records:
        assert keys <= set(r)
        assert set(r["versions"]) >= {"memrl_eqx", "jax", "equinox"}
        assert r["status"] == "ok" and r["level"] == "Easy"
        assert r["total_steps"] == r["steps_trained"] == 2048
        assert r["config"]["num_envs"] == 4 and r["optimizer"]["kind"] == "adam"
        # MMER is the maximum of the recorded per-update curve (16 updates).
        assert len(r["returns"]) == len(r["steps"]) == 16
        assert r["steps"] == list(range(128, 2049, 128))
        seen = [x for x in r["returns"] if x is not None]
        assert r["mmer"] == pytest.approx(max(seen))
        assert -1.0 <= r["mmer"] <= 1.0 and -1.0 <= r["eval_return"] <= 1.0
        assert r["seconds"] > 0
    # Seeds are different networks, so their curves differ.
    gru = [r for r in records if r["torso"] == "gru"]
    assert gru[0]["returns"] != gru[1]["returns"]
    # The settings, the table and the plots.
    settings = json.loads((out / "bench.json").read_text())
    assert settings["seeds"] == 2 and settings["total_steps"] == 2048
    report = (out / "results.md").read_text()
    assert "## Easy" in report and "| task | gru | mlp | published PPO-GRU" in report
    row = next(line for line in report.splitlines() if "RepeatFirstEasy |" in line)
    ours = np.mean([r["mmer"] for r in gru if r["task"] == "RepeatFirstEasy"])
    assert "1.000 ± 0.000" in row and f"{ours - 1.0:+.3f}" in row
    for plot in ["mmer_easy.png", "aggregate.png"] + [f"curves/{t}.png" for t in TASKS]:
        assert (out / "plots" / plot).stat().st_size > 1000
    for torso in TORSOS:
        for task in TASKS:
            assert (out / "cells" / f"{torso}-{task}" / "state.ckpt").exists()
    assert len(log.starting("train ")) == 4 and not log.starting("resume")


def test_a_rerun_skips_the_finished_cells(bench):
    out, records, _ = bench
    log = Log()
    again = popgym(out, torsos=TORSOS, tasks=TASKS, log=log, **SETTINGS)
    assert len(log.starting("skip ")) == 4
    assert not log.starting("train ") and not log.starting("  ")
    assert again == records  # timestamps included: nothing was retrained


def test_an_interrupted_cell_continues_from_its_checkpoint(bench, tmp_path):
    out, records, _ = bench
    fresh = tmp_path / "bench"
    cell = dict(torsos=["mlp"], tasks=["RepeatFirstEasy"], **SETTINGS)
    interrupted = Log(stop_at="chunk 5/16")
    with pytest.raises(KeyboardInterrupt):
        popgym(fresh, log=interrupted, **cell)
    assert not (fresh / "results.jsonl").exists()
    assert (fresh / "cells" / "mlp-RepeatFirstEasy" / "state.ckpt").exists()

    log = Log()
    resumed = popgym(fresh, log=log, **cell)
    assert log.starting("resume mlp RepeatFirstEasy from its checkpoint at chunk 5/16")
    assert not log.starting("train ")
    chunks = [line for line in log.lines if ": chunk " in line]
    assert len(chunks) == 11 and "chunk 6/16" in chunks[0]
    # Exactly what the uninterrupted run computed.
    before = [r for r in records if (r["torso"], r["task"]) == ("mlp", TASKS[0])]
    for key in ("seed", "mmer", "eval_return", "returns", "steps"):
        assert [r[key] for r in resumed] == [r[key] for r in before]


def test_the_report_is_written_after_every_cell(tmp_path):
    out = tmp_path / "bench"
    with pytest.raises(KeyboardInterrupt):  # as the second cell starts
        popgym(
            out,
            torsos=["mlp"],
            tasks=TASKS,
            log=Log(stop_at=f"train mlp {TASKS[1]}"),
            **SETTINGS,
        )
    report = (out / "results.md").read_text()
    assert f"| {TASKS[0]} |" in report and f"| {TASKS[1]} |" not in report


def test_other_settings_are_refused_without_overwrite(bench, tmp_path):
    out, records, _ = bench
    with pytest.raises(BenchError, match="overwrite=True") as error:
        popgym(out, torsos=TORSOS, tasks=TASKS, log=Log(), **(SETTINGS | {"seeds": 3}))
    assert str(out) in str(error.value) and "seeds: 2 there, 3 now" in str(error.value)
    assert _records(out) == records  # untouched
    # A directory that is not a bench directory is not written to either.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(BenchError, match="not a bench directory"):
        popgym(other, log=Log(), **SETTINGS)
    # overwrite=True replaces the bench files, and only those.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "notes.txt").write_text("mine")
    small = SETTINGS | {"total_steps": 256}
    log = Log()
    new = popgym(
        copy, torsos=["mlp"], tasks=TASKS[:1], overwrite=True, log=log, **small
    )
    assert log.starting("overwrite: removing")
    assert [(r["torso"], r["task"], r["total_steps"]) for r in new] == [
        ("mlp", TASKS[0], 256)
    ] * 2
    assert sorted(p.name for p in (copy / "cells").iterdir()) == ["mlp-" + TASKS[0]]
    assert (copy / "notes.txt").read_text() == "mine"


def _nan_torso(key):
    """A memoryless torso whose weights are NaN: every loss is NaN."""
    torso = mnn.SequenceModelWrapper(mnn.MLP(in_features=16, features=(16,), key=key))
    nan = lambda x: jnp.full_like(x, jnp.nan) if eqx.is_inexact_array(x) else x
    return jax.tree.map(nan, torso)


def test_a_nan_loss_fails_its_cell_and_the_others_go_on(tmp_path):
    out = tmp_path / "bench"
    log = Log()
    torsos = [("nan_mlp", _nan_torso), "mlp"]
    records = popgym(out, torsos=torsos, tasks=TASKS[:1], log=log, **SETTINGS)
    failed = [r for r in records if r["torso"] == "nan_mlp"]
    assert [r["status"] for r in failed] == ["failed", "failed"]
    assert all(r["mmer"] is None and r["eval_return"] is None for r in failed)
    assert "NaN loss at step 128 (seeds 0, 1)" in failed[0]["error"]
    (line,) = log.starting("FAILED nan_mlp RepeatFirstEasy: NaN loss at step 128")
    assert "the other cells go on" in line
    ok = [r for r in records if r["torso"] == "mlp"]
    assert [r["status"] for r in ok] == ["ok", "ok"] and ok[0]["mmer"] is not None
    assert "| failed |" in (out / "results.md").read_text()
    # A failed cell is finished: a re-run does not train it again.
    log = Log()
    popgym(out, torsos=torsos, tasks=TASKS[:1], log=log, **SETTINGS)
    assert len(log.starting("skip ")) == 2 and not log.starting("train ")


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown torso 'nope'"):
        popgym(tmp_path, torsos=["nope"], log=Log())
    with pytest.raises(ValueError, match="unknown task 'RepeatFirst'"):
        popgym(tmp_path, tasks="RepeatFirst", log=Log())
    with pytest.raises(ValueError, match="`seeds` must be a positive int"):
        popgym(tmp_path, seeds=0, log=Log())
    with pytest.raises(TypeError, match="optimizer_record"):
        popgym(tmp_path, optimizer_record="adam", log=Log())
    assert not any(tmp_path.iterdir())  # nothing written


# ------------------------------------------------------------------ published
def test_the_published_table():
    tasks = {name.split("::")[1] for name in list_envs("popgym")}
    assert "ICLR 2023" in CITATION
    assert BUDGET["total_steps"] == 15_000_000
    for model, figures in PUBLISHED.items():
        assert model == model.lower() and figures
        for task, figure in figures.items():
            assert task in tasks and task.endswith(("Easy", "Medium", "Hard"))
            assert -1.0 <= figure.mean <= 1.0
            assert figure.sd is None or 0.0 <= figure.sd <= 1.0
    # The GRU's column: 8 tasks at every level.
    for level in ("Easy", "Medium", "Hard"):
        assert len([t for t in PUBLISHED["gru"] if t.endswith(level)]) == 8
    assert published_mmer("RepeatFirstEasy").mean == 1.0
    assert published_mmer("BattleshipEasy") is None
    assert published_mmer("CountRecallEasy", "mlp") is None
