"""The aggregate statistics of the POPGym report: IQM and the stratified
bootstrap."""

import numpy as np
import pytest

from memrl_eqx.bench._aggregate import iqm, mean, normalised, stratified_bootstrap


def test_iqm_is_the_mean_of_the_middle_half():
    scores = np.array([[9.0, 0.0], [1.0, 2.0], [3.0, 4.0], [5.0, -7.0]])
    middle = sorted(scores.ravel())[2:6]  # 8 scores: drop 2 at each end
    assert iqm(scores) == pytest.approx(np.mean(middle))
    assert mean(scores) == pytest.approx(np.mean(scores))


def test_the_bootstrap_resamples_runs_within_each_task():
    # Task 0's runs all score 0 and task 1's all score 1: every stratified
    # resample keeps half its scores at 0 and half at 1, so the mean never moves
    # (an unstratified bootstrap over all 8 scores would).
    scores = np.array([[0.0, 1.0]] * 4)
    assert stratified_bootstrap(scores, mean, reps=200) == (0.5, 0.5, 0.5)
    # By hand: the mean of a resample is the mean of its draws per task.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    point, low, high = stratified_bootstrap(x, mean, reps=4000, seed=1)
    assert point == pytest.approx(x.mean())
    assert low < point < high
    # The spread of the mean of 15 draws (5 per task): sd / sqrt(15) per half-width.
    sd = np.sqrt(np.mean(x.var(axis=0)) / x.size)
    assert (high - low) / 2 == pytest.approx(1.96 * sd, rel=0.25)


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match=r"shape \(runs, tasks\)"):
        stratified_bootstrap(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        stratified_bootstrap(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap(np.zeros((2, 2)), confidence=1.0)


def test_normalised_maps_the_popgym_range_to_the_unit_interval():
    assert normalised(np.array([-1.0, 0.0, 1.0])).tolist() == [0.0, 0.5, 1.0]
