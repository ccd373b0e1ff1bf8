import json
import shutil

import numpy as np
import pytest

from memrl_eqx.cli import main
from memrl_eqx.cli._plot import mean_and_spread

from . import _runs


PNG = b"\x89PNG\r\n\x1a\n"


def _fake_run(path, seed, steps, values, **options):
    """A run directory as `memrl-eqx train` leaves it, as far as `plot` reads."""
    path.mkdir(parents=True)
    config = {"algorithm": "ppo", "torso": "gru", "env": "popgym::X", "seed": seed}
    (path / "config.json").write_text(json.dumps({"options": config | options}))
    with open(path / "metrics.jsonl", "w") as f:
        for s, v in zip(steps, values):
            f.write(json.dumps({"step": s, "return": v}) + "\n")
        f.write(json.dumps({"step": steps[-1], "eval/return": 9.0}) + "\n")
    return path


def test_mean_and_spread_over_the_shared_steps():
    a = ([0, 10, 20], [0.0, 1.0, 2.0])
    b = ([5, 15, 25, 30], [1.0, 1.0, 1.0, 1.0])
    grid, mean, std = mean_and_spread([a, b], points=4)
    np.testing.assert_allclose(grid, [5, 10, 15, 20])  # where both have data
    np.testing.assert_allclose(mean, [(0.5 + 1) / 2, 1, (1.5 + 1) / 2, 1.5])
    np.testing.assert_allclose(std, [0.25, 0, 0.25, 0.5])
    with pytest.raises(ValueError, match="overlap"):
        mean_and_spread([([0, 1], [0, 0]), ([2, 3], [0, 0])])


def test_plot_of_two_seeds_and_another_torso(tmp_path, capsys):
    steps = [100, 200, 300, None]
    runs = [
        _fake_run(tmp_path / "a", 0, steps[:3], [0.1, None, 0.5]),
        _fake_run(tmp_path / "b", 1, steps[:3], [0.2, 0.4, 0.6]),
        _fake_run(tmp_path / "c", 0, steps[:3], [0.0, 0.0, 0.1], torso="lru"),
    ]
    out = tmp_path / "curves.png"
    assert main(["plot", *map(str, runs), "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    assert str(out) in capsys.readouterr().out


def test_plot_of_real_runs(tmp_path):
    """Two seeds of a real (tiny) run plotted together."""
    runs = [tmp_path / f"s{seed}" for seed in (0, 1)]
    for seed, run in enumerate(runs):
        assert _runs.train(run, 1024, "--seed", str(seed)) == 0
    out = tmp_path / "curves.png"
    assert main(["plot", *map(str, runs), "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p, "not a run directory"),
        (lambda p: _fake_run(p / "r", 0, [1], [float("nan")]), "no finite 'return'"),
    ],
)
def test_bad_runs_are_named(tmp_path, capsys, setup, message):
    run = setup(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["plot", str(run), "--output", str(tmp_path / "x.png")])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_output_folder(tmp_path, capsys):
    run = _fake_run(tmp_path / "r", 0, [1, 2], [0.0, 1.0])
    with pytest.raises(SystemExit):
        main(["plot", str(run), "--output", str(tmp_path / "no" / "x.png")])
    assert "does not exist" in capsys.readouterr().err
    shutil.rmtree(run)
