"""POPGym's control tasks: Noisy Stateless CartPole, Stateless Pendulum and Noisy
Stateless Pendulum."""

import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._noisy_stateless_cartpole import (
    NoisyStatelessCartPole,
    NoisyStatelessCartPoleEasy,
    NoisyStatelessCartPoleHard,
    NoisyStatelessCartPoleMedium,
)
from memrl_eqx.envs.popgym._stateless_cartpole import StatelessCartPole
from memrl_eqx.envs.popgym._stateless_pendulum import (
    NoisyStatelessPendulum,
    NoisyStatelessPendulumEasy,
    NoisyStatelessPendulumHard,
    NoisyStatelessPendulumMedium,
    StatelessPendulum,
    StatelessPendulumEasy,
    StatelessPendulumHard,
    StatelessPendulumMedium,
)

from . import popgym_contract as contract
from ._helpers import cartpole_oracle


# name: (class, max_steps_in_episode, noise_sigma), POPGym's presets
CARTPOLES = {
    "NoisyStatelessCartPoleEasy": (NoisyStatelessCartPoleEasy, 200, 0.1),
    "NoisyStatelessCartPoleMedium": (NoisyStatelessCartPoleMedium, 200, 0.2),
    "NoisyStatelessCartPoleHard": (NoisyStatelessCartPoleHard, 200, 0.3),
}
PENDULUMS = {
    "StatelessPendulumEasy": (StatelessPendulumEasy, 200, 0.0),
    "StatelessPendulumMedium": (StatelessPendulumMedium, 150, 0.0),
    "StatelessPendulumHard": (StatelessPendulumHard, 100, 0.0),
    "NoisyStatelessPendulumEasy": (NoisyStatelessPendulumEasy, 200, 0.1),
    "NoisyStatelessPendulumMedium": (NoisyStatelessPendulumMedium, 200, 0.2),
    "NoisyStatelessPendulumHard": (NoisyStatelessPendulumHard, 200, 0.3),
}
PRESETS = {**CARTPOLES, **PENDULUMS}
NUM_ENVS = 32


def _angle(theta):
    return (theta + jnp.pi) % (2 * jnp.pi) - jnp.pi


def pendulum_swing_up(env, key, obs, state, arg=None):
    """Pumps energy into the pendulum until it nears the top, then balances it
    with a PD controller: a policy on the full (hidden) state. With gymnax's
    dynamics `theta'' = 15 sin(theta) + 3 u`, the energy `E = theta'^2 / 2 +
    15 cos(theta)` is `15` upright and at rest, and `dE/dt = 3 u theta'`."""
    del env, key, obs, arg
    theta, theta_dot = state.theta, state.theta_dot
    energy = 0.5 * theta_dot**2 + 15.0 * jnp.cos(theta)
    pump = jnp.where((15.0 - energy) * theta_dot >= 0, 2.0, -2.0)
    balance = jnp.clip(-(10.0 * _angle(theta) + 2.0 * theta_dot), -2.0, 2.0)
    torque = jnp.where(jnp.cos(theta) > 0.95, balance, pump)
    return jnp.reshape(torque, (1,)).astype(jnp.float32)


# `NUM_ENVS` environments for two maximal episodes.
CASES = {
    name: contract.PresetCase(
        cls,
        cartpole_oracle if name in CARTPOLES else pendulum_swing_up,
        num_envs=NUM_ENVS,
        num_steps=2 * length,
    )
    for name, (cls, length, _) in PRESETS.items()
}


def _cases(names):
    return contract.cases(CASES[name] for name in names)


def _clean_obs(name, state):
    """The observation without noise, from the hidden states."""
    if name in CARTPOLES:
        return np.stack([state.x, state.theta], axis=-1)
    return np.stack([np.cos(state.theta), np.sin(state.theta)], axis=-1)


@_cases(PRESETS)
def test_preset_parameters(case):
    env, _ = case.made
    _, length, sigma = PRESETS[case.name]
    assert env.max_steps_in_episode == length
    if case.name in CARTPOLES:
        assert isinstance(env, StatelessCartPole)
        contract.check_preset(case, max_steps=length, num_actions=2)
    else:
        assert isinstance(env, StatelessPendulum)
        contract.check_preset(case, max_steps=length, num_actions=1)
    assert getattr(env, "noise_sigma", 0.0) == sigma


@_cases(PRESETS)
def test_spaces_contain_what_the_env_returns(case):
    cartpole = case.name in CARTPOLES
    obs_space, action_space = contract.check_spaces(
        case, obs_shape=(2,), discrete=cartpole
    )
    if cartpole:
        assert action_space.n == 2
        np.testing.assert_allclose(obs_space.high, [4.8, 24 * np.pi / 180])
    else:
        np.testing.assert_array_equal([action_space.low, action_space.high], [-2, 2])
        np.testing.assert_array_equal([obs_space.low, obs_space.high], [-1, 1])


@_cases(PRESETS)
def test_deterministic_for_a_fixed_key(case):
    # Another key (the oracle rollout's) deals other initial states.
    contract.check_deterministic(case, state_fields=("theta",))


@_cases(PRESETS)
def test_flags_in_info(case):
    contract.check_done_flags(case)


@_cases(CARTPOLES)
def test_cartpole_random_policy_returns(case):
    _, length, _ = PRESETS[case.name]
    traj = case.random
    returns, lengths = contract.check_returns_within(case, traj)
    # Every step is worth 1 / max_steps, and a uniformly random policy drops the
    # pole after about 22 steps on average (CartPole's random baseline): the
    # noise does not change the dynamics.
    np.testing.assert_allclose(returns, lengths / length, rtol=1e-5)
    assert (returns > 0).all()
    assert 15 < lengths.mean() < 30
    assert traj["terminated"].sum() == len(returns)


@_cases(CARTPOLES)
def test_cartpole_oracle_reaches_the_maximum_return(case):
    _, length, _ = PRESETS[case.name]
    contract.check_oracle_maximum(case, count=2 * NUM_ENVS, length=length)
    # The pole was kept up until the time limit: the episode is cut short.
    contract.check_ends_every(case.oracle_rollout, length, "truncated")


@_cases(PENDULUMS)
def test_pendulum_returns_and_truncation(case):
    _, length, _ = PRESETS[case.name]
    both_returns = []
    for traj in case.rollouts:
        # No terminal state: every episode is truncated at the time limit.
        contract.check_ends_every(traj, length, "truncated")
        returns, _ = contract.check_returns_within(
            case, traj, count=2 * NUM_ENVS, length=length
        )
        both_returns.append(returns)
    random_returns, controller_returns = both_returns
    # No closed form for a random policy: the pendulum mostly swings low, where a
    # step is worth (8.137 - cost) / 8.137 / length with a cost around 6. A
    # simulation of 20000 episodes gives mean returns 0.241, 0.245 and 0.246 for
    # 100, 150 and 200 steps, std 0.18 (the noise does not change the dynamics):
    # the mean of 2 * NUM_ENVS = 64 episodes has a standard error of 0.023.
    contract.check_mean_near(random_returns, 0.245, 0.1)
    # The swing-up controller on the hidden state spends most of the episode
    # upright (at least 0.54 from any start, 0.81 to 0.91 on average in long
    # runs, longer episodes higher).
    assert controller_returns.min() > 0.45
    assert controller_returns.mean() > 0.75
    assert controller_returns.mean() > random_returns.mean() + 0.4


@_cases([*PRESETS][::3])
def test_reset_after_the_time_limit(case):
    _, length, _ = PRESETS[case.name]
    traj = case.oracle_rollout
    time = np.asarray(traj["state"].time)
    np.testing.assert_array_equal(time, np.tile(np.arange(length), (NUM_ENVS, 2)))


@_cases(PRESETS)
def test_observations_are_the_hidden_positions_plus_noise(case):
    name = case.name
    _, _, sigma = PRESETS[name]
    traj = case.random
    obs = np.asarray(traj["obs"], dtype=np.float64)
    clean = _clean_obs(name, traj["state"])
    noise = obs - clean
    if sigma == 0.0:
        np.testing.assert_allclose(noise, 0.0, atol=1e-6)
        return
    # Noise is drawn at reset too, not only on steps.
    assert (np.abs(noise[:, 0]) > 0).all()
    if name in CARTPOLES:
        # x is never clipped (|x| <= 2.4 + a step, the bound is 4.8 and the noise
        # exceeds 2 only with probability < 1e-10).
        sample = noise[..., 0].ravel()
    else:
        # Clipping to [-1, 1] only reaches coordinates within 0.1 of 0 when the
        # noise is beyond 0.9 >= 3 sigma, probability < 0.3%.
        sample = noise[np.abs(clean) < 0.1]
    # Gaussian, centred, of standard deviation sigma: with n >= 1500 samples the
    # std's relative standard error is 1 / sqrt(2 n) < 2%, the mean's sigma /
    # sqrt(n) < 0.03 sigma.
    assert len(sample) >= 1500
    assert abs(sample.mean()) < 0.1 * sigma
    assert abs(sample.std() / sigma - 1) < 0.08
    # Drawn afresh at every step: consecutive draws are uncorrelated.
    x_noise = noise[..., 0]
    corr = np.corrcoef(x_noise[:, :-1].ravel(), x_noise[:, 1:].ravel())[0, 1]
    assert abs(corr) < 0.1


@_cases(CARTPOLES)
def test_noisy_cartpole_dynamics_are_cartpoles(case):
    """CartPole-v1 by hand (Euler steps of 0.02 s, force +-10 N): the noise
    leaves the hidden dynamics alone."""
    traj = case.random
    state = traj["state"]
    x, x_dot, theta, theta_dot = (
        np.asarray(getattr(state, f), dtype=np.float64)
        for f in ("x", "x_dot", "theta", "theta_dot")
    )
    force = np.where(np.asarray(traj["action"]) == 1, 10.0, -10.0)
    cos, sin = np.cos(theta), np.sin(theta)
    temp = (force + 0.05 * theta_dot**2 * sin) / 1.1
    theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4 / 3 - 0.1 * cos**2 / 1.1))
    x_acc = temp - 0.05 * theta_acc * cos / 1.1
    stepped = ~contract.done(traj)[:, :-1]  # the steps not followed by a reset
    for now, rate in (
        (x, x_dot),
        (x_dot, x_acc),
        (theta, theta_dot),
        (theta_dot, theta_acc),
    ):
        expected = now + 0.02 * rate
        np.testing.assert_allclose(
            now[:, 1:][stepped], expected[:, :-1][stepped], atol=1e-5
        )
    # A fallen pole (past 12 degrees) or a cart off the track (past 2.4) ends
    # the episode.
    new_x, new_theta = x + 0.02 * x_dot, theta + 0.02 * theta_dot
    out = (np.abs(new_x) > 2.4) | (np.abs(new_theta) > 12 * np.pi / 180)
    np.testing.assert_array_equal(traj["terminated"], out)


@_cases(["StatelessPendulumHard", "NoisyStatelessPendulumHard"])
def test_pendulum_dynamics_and_reward(case):
    """Pendulum-v1 by hand: `theta_dot' = clip(theta_dot + (15 sin(theta) + 3 u)
    * 0.05, -8, 8)`, `theta' = theta + 0.05 theta_dot'`, and the reward POPGym's
    rescaling of the cost before the step."""
    _, length, _ = PRESETS[case.name]
    traj = case.random
    state = traj["state"]
    theta = np.asarray(state.theta, dtype=np.float64)
    theta_dot = np.asarray(state.theta_dot, dtype=np.float64)
    torque = np.clip(np.asarray(traj["action"][..., 0], dtype=np.float64), -2, 2)
    next_theta_dot = np.clip(
        theta_dot + (15 * np.sin(theta) + 3 * torque) * 0.05, -8.0, 8.0
    )
    next_theta = theta + 0.05 * next_theta_dot
    stepped = ~contract.done(traj)[:, :-1]  # the steps not followed by a reset
    np.testing.assert_allclose(
        theta_dot[:, 1:][stepped], next_theta_dot[:, :-1][stepped], atol=1e-4
    )
    np.testing.assert_allclose(
        theta[:, 1:][stepped], next_theta[:, :-1][stepped], atol=1e-4
    )
    angle = (theta + np.pi) % (2 * np.pi) - np.pi
    cost = angle**2 + 0.1 * theta_dot**2 + 0.001 * torque**2
    worst = np.pi**2 + 0.1 * 64 + 0.001 * 4  # 16.2736
    expected = (worst / 2 - cost) / (worst / 2) / length
    np.testing.assert_allclose(traj["reward"], expected, rtol=1e-4, atol=1e-6)
    assert np.abs(np.asarray(traj["reward"])).max() <= 1 / length + 1e-7


def test_custom_lengths_and_noise():
    env = NoisyStatelessPendulum(noise_sigma=0.0, max_steps_in_episode=7)
    assert env.default_params.max_steps_in_episode == 7 and env.noise_sigma == 0.0
    env = NoisyStatelessCartPole(noise_sigma=0.5, max_steps_in_episode=30)
    assert env.default_params.max_steps_in_episode == 30 and env.noise_sigma == 0.5


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (StatelessPendulum, dict(max_steps_in_episode=0), "at least 1, got 0"),
        (NoisyStatelessPendulum, dict(noise_sigma=-0.1), "non-negative, got -0.1"),
        (NoisyStatelessPendulum, dict(max_steps_in_episode=0), "at least 1"),
        (NoisyStatelessCartPole, dict(noise_sigma=float("inf")), "finite"),
        (NoisyStatelessCartPole, dict(max_steps_in_episode=-3), "at least 1"),
    ],
)
def test_rejects_bad_parameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
