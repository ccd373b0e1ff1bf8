import json
import re

import pytest

from memrl_eqx.cli import main


def _mean(out: str) -> float:
    return float(re.search(r"return (-?[\d.]+) ±", out).group(1))


def test_evaluate_reloads_the_trained_policy(finished, capsys):
    """By default it plays the run's own evaluation episodes, so it reproduces
    the return the run recorded; another seed plays other episodes."""
    recorded = json.loads((finished / "evaluation.json").read_text())
    assert main(["evaluate", str(finished), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "at step 2,048" in out and "over 2 episodes" in out
    assert _mean(out) == pytest.approx(recorded["return_mean"], abs=5e-4)
    assert main(["evaluate", str(finished), "--episodes", "5", "--seed", "3"]) == 0
    assert -1.0 <= _mean(capsys.readouterr().out) <= 1.0


def test_evaluate_a_directory_that_is_not_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["evaluate", str(tmp_path)])
    assert exit.value.code == 2
    assert "not a run directory" in capsys.readouterr().err
