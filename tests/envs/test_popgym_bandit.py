"""POPGym's Multiarmed Bandit."""

import functools as ft

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs.popgym._multiarmed_bandit import (
    MultiarmedBandit,
    MultiarmedBanditEasy,
    MultiarmedBanditHard,
    MultiarmedBanditMedium,
    MultiarmedBanditState,
)

from ._helpers import completed_episodes, FAST_COMPILE, random_policy, rollout


# name: (class, num_bandits, max_steps_in_episode), POPGym's presets
PRESETS = {
    "MultiarmedBanditEasy": (MultiarmedBanditEasy, 10, 200),
    "MultiarmedBanditMedium": (MultiarmedBanditMedium, 20, 400),
    "MultiarmedBanditHard": (MultiarmedBanditHard, 30, 600),
}
NUM_ENVS = 32


@ft.cache
def _make(name):
    # One instance per preset, so that its rollout compiles once.
    env = PRESETS[name][0]()
    return env, env.default_params


def bandit_oracle(env, key, obs, state, arg=None):
    """Pulls the arm most likely to pay out, read from the hidden state."""
    del env, key, obs, arg
    return jnp.argmax(state.probs).astype(jnp.int32)


def _random_or_oracle(env, key, obs, state, use_oracle):
    oracle = bandit_oracle(env, key, obs, state)
    return jnp.where(use_oracle, oracle, random_policy(env, key, obs, state))


def _run(name, seed, use_oracle):
    """`NUM_ENVS` environments for one episode and the first step of the next:
    one compilation per preset serves every test."""
    env, params = _make(name)
    return rollout(
        env,
        params,
        jax.random.key(seed),
        jnp.array(use_oracle),
        policy=_random_or_oracle,
        num_envs=NUM_ENVS,
        num_steps=PRESETS[name][2] + 1,
    )


@ft.cache
def _random_rollout(name):
    return _run(name, seed=5, use_oracle=False)


@ft.cache
def _oracle_rollout(name):
    return _run(name, seed=6, use_oracle=True)


def _episodes(traj):
    """The returns of the completed episodes, and each one's arm probabilities."""
    done = np.asarray(traj["terminated"] | traj["truncated"])
    returns, lengths = completed_episodes(traj["reward"], done)
    probs = np.asarray(traj["state"].probs[:, 0], dtype=np.float64)
    return returns, lengths, probs


@pytest.mark.parametrize("name", PRESETS)
def test_preset_parameters(name):
    env, params = _make(name)
    _, num_bandits, length = PRESETS[name]
    assert type(env).__name__ == name == env.name
    assert (env.num_bandits, env.max_steps_in_episode) == (num_bandits, length)
    assert params.max_steps_in_episode == length
    assert env.num_actions == num_bandits


@pytest.mark.parametrize("name", PRESETS)
def test_spaces_contain_what_the_env_returns(name):
    env, params = _make(name)
    _, num_bandits, length = PRESETS[name]
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (2,)
    assert obs_space.dtype == jnp.float32
    assert isinstance(action_space, spaces.Discrete)
    assert action_space.n == num_bandits
    assert action_space.contains(action_space.sample(jax.random.key(0)))

    traj = _random_rollout(name)
    batch = traj["reward"].shape
    assert batch == (NUM_ENVS, length + 1)
    for obs in (traj["obs"], traj["info"]["final_observation"]):
        obs = np.asarray(obs)
        assert obs.dtype == np.float32 and obs.shape == batch + (2,)
        np.testing.assert_array_equal(obs, np.eye(2)[np.argmax(obs, axis=-1)])
    actions = np.asarray(traj["action"])
    assert actions.dtype == np.int32
    assert np.all((0 <= actions) & (actions < num_bandits))
    assert traj["reward"].dtype == jnp.float32
    assert traj["terminated"].dtype == traj["truncated"].dtype == jnp.bool_
    probs = np.asarray(traj["state"].probs)
    assert probs.dtype == np.float32 and probs.shape == batch + (num_bandits,)
    assert np.all((0 <= probs) & (probs < 1))


@pytest.mark.parametrize("name", PRESETS)
def test_deterministic_for_a_fixed_key(name):
    a = _random_rollout(name)
    b = _run(name, seed=5, use_oracle=False)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    # Another key (the oracle rollout's) draws other arms.
    c = _oracle_rollout(name)
    assert not np.array_equal(a["state"].probs[:, 0], c["state"].probs[:, 0])


@pytest.mark.parametrize("name", PRESETS)
def test_truncated_at_the_time_limit_then_reset(name):
    _, _, length = PRESETS[name]
    traj = _random_rollout(name)
    truncated = np.asarray(traj["truncated"])
    np.testing.assert_array_equal(traj["info"]["truncated"], truncated)
    assert not np.asarray(traj["terminated"]).any()
    assert truncated[:, length - 1].all()
    assert not np.delete(truncated, length - 1, axis=1).any()
    # The arms are fixed for an episode and drawn anew at reset, with the
    # observation back to "no payout".
    probs = np.asarray(traj["state"].probs)
    np.testing.assert_array_equal(probs[:, :length], probs[:, :1].repeat(length, 1))
    assert (probs[:, length] != probs[:, 0]).all()
    time = np.asarray(traj["state"].time)
    np.testing.assert_array_equal(
        time[:, :length], np.tile(np.arange(length), (NUM_ENVS, 1))
    )
    assert (time[:, length] == 0).all()
    reset_obs = np.asarray(traj["obs"])[:, [0, length]]
    np.testing.assert_array_equal(reset_obs, np.broadcast_to([1, 0], reset_obs.shape))


@pytest.mark.parametrize("name", PRESETS)
def test_random_policy_returns(name):
    _, n, length = PRESETS[name]
    returns, lengths, probs = _episodes(_random_rollout(name))
    assert len(returns) == NUM_ENVS
    np.testing.assert_array_equal(lengths, length)
    assert (returns >= -1 - 1e-5).all() and (returns <= 1 + 1e-5).all()
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


@pytest.mark.parametrize("name", PRESETS)
def test_oracle_returns(name):
    _, n, length = PRESETS[name]
    traj = _oracle_rollout(name)
    returns, lengths, probs = _episodes(traj)
    assert len(returns) == NUM_ENVS
    np.testing.assert_array_equal(lengths, length)
    assert (returns >= -1 - 1e-5).all() and (returns <= 1 + 1e-5).all()
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
    traj = _random_rollout("MultiarmedBanditEasy")
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
