"""POPGym's Multiarmed Bandit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._multiarmed_bandit import (
    MultiarmedBandit,
    MultiarmedBanditEasy,
    MultiarmedBanditHard,
    MultiarmedBanditMedium,
    MultiarmedBanditState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


# name: (class, num_bandits, max_steps_in_episode), POPGym's presets
PRESETS = {
    "MultiarmedBanditEasy": (MultiarmedBanditEasy, 10, 200),
    "MultiarmedBanditMedium": (MultiarmedBanditMedium, 20, 400),
    "MultiarmedBanditHard": (MultiarmedBanditHard, 30, 600),
}
NUM_ENVS = 32


def bandit_oracle(env, key, obs, state, arg=None):
    """Pulls the arm most likely to pay out, read from the hidden state."""
    del env, key, obs, arg
    return jnp.argmax(state.probs).astype(jnp.int32)


# `NUM_ENVS` environments for one episode and the first step of the next.
CASES = {
    name: contract.PresetCase(
        cls, bandit_oracle, num_envs=NUM_ENVS, num_steps=length + 1
    )
    for name, (cls, _, length) in PRESETS.items()
}
all_cases = contract.cases(CASES.values())


def _episodes(case, traj):
    """The returns of the completed episodes (one an environment, within
    [-1, 1]), and each one's arm probabilities."""
    _, _, length = PRESETS[case.name]
    returns, _ = contract.check_returns_within(
        case, traj, count=NUM_ENVS, length=length
    )
    probs = np.asarray(traj["state"].probs[:, 0], dtype=np.float64)
    return returns, probs


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    _, num_bandits, length = PRESETS[case.name]
    assert (env.num_bandits, env.max_steps_in_episode) == (num_bandits, length)
    contract.check_preset(case, max_steps=length, num_actions=num_bandits)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    _, num_bandits, _ = PRESETS[case.name]
    contract.check_spaces(case, obs_shape=(2,))
    traj = case.random
    batch = traj["reward"].shape
    for obs in (traj["obs"], traj["info"]["final_observation"]):
        np.testing.assert_array_equal(obs, np.eye(2)[np.argmax(obs, axis=-1)])
    probs = traj["state"].probs
    assert probs.dtype == np.float32 and probs.shape == batch + (num_bandits,)
    assert np.all((0 <= probs) & (probs < 1))


@all_cases
def test_deterministic_for_a_fixed_key(case):
    # Another key (the oracle rollout's) draws other arms.
    contract.check_deterministic(case, state_fields=("probs",))


@all_cases
def test_truncated_at_the_time_limit_then_reset(case):
    _, _, length = PRESETS[case.name]
    traj = case.random
    contract.check_done_flags(case)
    contract.check_ends_every(traj, length, "truncated")
    # The arms are fixed for an episode and drawn anew at reset, with the
    # observation back to "no payout".
    probs = traj["state"].probs
    np.testing.assert_array_equal(probs[:, :length], probs[:, :1].repeat(length, 1))
    assert (probs[:, length] != probs[:, 0]).all()
    time = traj["state"].time
    np.testing.assert_array_equal(
        time[:, :length], np.tile(np.arange(length), (NUM_ENVS, 1))
    )
    assert (time[:, length] == 0).all()
    reset_obs = traj["obs"][:, [0, length]]
    np.testing.assert_array_equal(reset_obs, np.broadcast_to([1, 0], reset_obs.shape))


@all_cases
def test_random_policy_returns(case):
    _, n, length = PRESETS[case.name]
    returns, probs = _episodes(case, case.random)
    # A uniformly random arm pays out with probability m = mean(probs), so a
    # return is (2 B - L) / L with B ~ Binomial(L, m) given the arms: its
    # expectation is 2 m - 1, and its variance given the arms 4 m (1 - m) / L.
    # Over arms drawn uniformly, E[m] = 1/2 and Var[m] = 1 / (12 n), so the
    # return's expectation is 0 and its variance 1 / (3 n) + 4 E[m (1 - m)] / L
    # with E[m (1 - m)] = 1/4 - 1 / (12 n). Both means are within 4.5 standard
    # errors.
    m = probs.mean(axis=1)
    conditional_var = 4 * m * (1 - m) / length
    assert abs((returns - (2 * m - 1)).mean()) < 4.5 * np.sqrt(
        conditional_var.sum() / NUM_ENVS**2
    )
    var = 1 / (3 * n) + (1 - 1 / (3 * n)) / length
    assert abs(returns.mean()) < 4.5 * np.sqrt(var / NUM_ENVS)


@all_cases
def test_oracle_returns(case):
    _, n, length = PRESETS[case.name]
    traj = case.oracle_rollout
    returns, probs = _episodes(case, traj)
    best = np.argmax(probs, axis=1)[:, None]
    np.testing.assert_array_equal(
        traj["action"][:, :length], np.broadcast_to(best, (NUM_ENVS, length))
    )
    # Always pulling the best arm, p = max(probs), is the best a policy can do
    # in expectation: a return has expectation 2 p - 1 and variance
    # 4 p (1 - p) / L given the arms. Over arms drawn uniformly p ~ Beta(n, 1):
    # E[p] = n / (n + 1), Var[p] = n / ((n + 1)^2 (n + 2)), so the expected
    # return is (n - 1) / (n + 1), and the mean is within 4.5 standard errors.
    p = probs.max(axis=1)
    conditional_var = 4 * p * (1 - p) / length
    assert abs((returns - (2 * p - 1)).mean()) < 4.5 * np.sqrt(
        conditional_var.sum() / NUM_ENVS**2
    )
    var = 4 * n / ((n + 1) ** 2 * (n + 2)) + conditional_var.mean()
    assert abs(returns.mean() - (n - 1) / (n + 1)) < 4.5 * np.sqrt(var / NUM_ENVS)


def test_rewards_and_observations_follow_the_payouts():
    _, _, length = PRESETS["MultiarmedBanditEasy"]
    traj = CASES["MultiarmedBanditEasy"].random
    reward = np.asarray(traj["reward"])
    np.testing.assert_allclose(np.abs(reward), 1 / length, rtol=1e-6)
    # The observation after a pull says whether it paid out; the reward agrees.
    payout = np.argmax(np.asarray(traj["info"]["final_observation"]), axis=-1) == 1
    np.testing.assert_array_equal(payout, reward > 0)
    # Arm a pays out with probability probs[a]: over N pulls the sum of
    # payout - probs[action] has std at most sqrt(N) / 2.
    probs = np.asarray(traj["state"].probs, dtype=np.float64)
    actions = np.asarray(traj["action"])
    chosen = np.take_along_axis(probs, actions[..., None], axis=-1)[..., 0]
    residual = payout - chosen
    assert abs(residual.sum()) < 4.5 * np.sqrt(residual.size) / 2


def test_a_pull_by_hand():
    env = MultiarmedBandit(num_bandits=3, max_steps_in_episode=4)
    params = env.default_params
    state = MultiarmedBanditState(
        probs=jnp.array([0.0, 1.0, 0.5], dtype=jnp.float32),
        time=jnp.array(2, dtype=jnp.int32),
    )
    key = jax.random.key(0)
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    obs, next_state, reward, terminated, _ = step(key, state, 1, params)
    np.testing.assert_array_equal(obs, [0, 1])
    assert reward == pytest.approx(0.25) and not terminated
    assert next_state.time == 3 and not env.is_truncated(next_state, params)
    np.testing.assert_array_equal(next_state.probs, state.probs)
    obs, next_state, reward, terminated, _ = step(key, next_state, 0, params)
    np.testing.assert_array_equal(obs, [1, 0])
    assert reward == pytest.approx(-0.25) and not terminated
    assert env.is_truncated(next_state, params)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_bandits=0), "num_bandits must be at least 1, got 0"),
        (dict(max_steps_in_episode=0), "max_steps_in_episode must be at least 1"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiarmedBandit(**kwargs)
