"""POPGym's Velocity Only CartPole: CartPole observed through its velocities."""

import jax
import numpy as np
import pytest

from memrl_eqx.envs import make
from memrl_eqx.envs.popgym import StatelessCartPole, VelocityOnlyCartPole

from . import popgym_contract as contract
from ._helpers import cartpole_oracle


# name: max_steps_in_episode, POPGym's presets
PRESETS = {
    "VelocityOnlyCartPoleEasy": 200,
    "VelocityOnlyCartPoleMedium": 400,
    "VelocityOnlyCartPoleHard": 600,
}
NUM_ENVS = 32

# `NUM_ENVS` environments for one maximal episode (and the start of the next).
CASES = {
    name: contract.PresetCase(
        name, cartpole_oracle, num_envs=NUM_ENVS, num_steps=length + 2
    )
    for name, length in PRESETS.items()
}
all_cases = contract.cases(CASES.values())
easy_cases = contract.cases([CASES["VelocityOnlyCartPoleEasy"]])


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    assert isinstance(env, StatelessCartPole)
    assert env.max_steps_in_episode == PRESETS[case.name]
    assert not env.velocities_at_reset
    contract.check_preset(case, max_steps=PRESETS[case.name], num_actions=2)


@easy_cases
def test_spaces_contain_what_the_env_returns(case):
    obs_space, action_space = contract.check_spaces(case, obs_shape=(2,))
    assert action_space.n == 2
    np.testing.assert_array_equal([obs_space.low, obs_space.high], [-np.inf, np.inf])


@easy_cases
def test_deterministic_for_a_fixed_key(case):
    contract.check_deterministic(case, state_fields=("theta",))


@all_cases
def test_flags_in_info(case):
    contract.check_done_flags(case)


@easy_cases
def test_random_policy_returns(case):
    traj = case.random
    returns, lengths = contract.check_returns_within(case, traj, min_count=NUM_ENVS)
    # Every step is worth 1 / max_steps; a uniformly random policy drops the pole
    # after about 22 steps on average (CartPole's random baseline).
    np.testing.assert_allclose(returns, lengths / 200, rtol=1e-5)
    assert 15 < lengths.mean() < 30
    assert traj["terminated"].sum() == len(returns)


@all_cases
def test_oracle_keeps_the_pole_up_until_the_time_limit(case):
    length = PRESETS[case.name]
    contract.check_oracle_maximum(case, count=NUM_ENVS, length=length)
    traj = case.oracle_rollout
    truncated = np.asarray(traj["truncated"])
    assert truncated[:, length - 1].all() and truncated.sum() == NUM_ENVS


@all_cases
def test_observes_velocities_and_the_position_at_reset(case):
    """After a step the observation is `[x_dot, theta_dot]`; at reset it is
    `[x, theta]`, as POPGym 1.0.7's."""
    for traj in case.rollouts:
        state = traj["state"]
        at_reset = np.asarray(state.time) == 0
        assert at_reset[:, 0].all() and at_reset[:, 1:].any()
        velocities = np.stack([state.x_dot, state.theta_dot], axis=-1)
        positions = np.stack([state.x, state.theta], axis=-1)
        expected = np.where(at_reset[..., None], positions, velocities)
        np.testing.assert_array_equal(traj["obs"], expected)
        final = traj["info"]["final_observation"]
        next_state = jax.tree.map(lambda x: np.asarray(x)[:, 1:], state)
        done = contract.done(traj)[:, :-1]
        np.testing.assert_array_equal(
            np.asarray(final)[:, :-1][~done],
            np.stack([next_state.x_dot, next_state.theta_dot], axis=-1)[~done],
        )


def test_velocities_at_reset_option():
    env, params = make(
        "popgym::VelocityOnlyCartPole",
        max_steps_in_episode=30,
        velocities_at_reset=True,
    )
    assert params.max_steps_in_episode == 30 and env.velocities_at_reset
    for key in jax.random.split(jax.random.key(3), 4):
        obs, state = env.reset(key, params)
        np.testing.assert_array_equal(obs, [state.x_dot, state.theta_dot])
        default_obs, same = VelocityOnlyCartPole().reset(key, params)
        np.testing.assert_array_equal(default_obs, [same.x, same.theta])
        assert same.x == state.x and same.theta_dot == state.theta_dot


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="max_steps_in_episode must be at least 1"):
        VelocityOnlyCartPole(max_steps_in_episode=0)
    with pytest.raises(TypeError, match="velocities_at_reset"):
        VelocityOnlyCartPole(velocities_at_reset=1)
