import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control import cartpole

from memrl_eqx.envs import make, popgym

from . import popgym_contract as contract
from ._helpers import (
    cartpole_oracle,
    completed_episodes,
    repeat_previous_oracle,
    rollout,
)


REPEAT_PREVIOUS = {
    # name: (num_decks, k), POPGym's presets
    "RepeatPreviousEasy": (1, 4),
    "RepeatPreviousMedium": (2, 32),
    "RepeatPreviousHard": (3, 64),
}
STATELESS_CARTPOLE = {
    # name: max_steps_in_episode, POPGym's presets
    "StatelessCartPoleEasy": 200,
    "StatelessCartPoleMedium": 400,
    "StatelessCartPoleHard": 600,
}
NUM_ENVS = 64


def _episode_length(name):
    """The longest an episode of a preset can be."""
    if name in REPEAT_PREVIOUS:
        num_decks, _ = REPEAT_PREVIOUS[name]
        return 52 * num_decks - 1
    return STATELESS_CARTPOLE[name]


# `NUM_ENVS` environments for two episodes of RepeatPrevious or one (maximal)
# episode of StatelessCartPole.
CASES = {
    name: contract.PresetCase(
        name,
        repeat_previous_oracle if name in REPEAT_PREVIOUS else cartpole_oracle,
        num_envs=NUM_ENVS,
        num_steps=(2 if name in REPEAT_PREVIOUS else 1) * _episode_length(name),
    )
    for name in [*REPEAT_PREVIOUS, *STATELESS_CARTPOLE]
}
all_cases = contract.cases(CASES.values())


@all_cases
def test_preset_parameters(case):
    name = case.name
    env, _ = case.made
    length = _episode_length(name)
    if name in REPEAT_PREVIOUS:
        num_decks, k = REPEAT_PREVIOUS[name]
        assert (env.num_decks, env.k, env.num_cards) == (num_decks, k, 52 * num_decks)
        contract.check_preset(case, max_steps=length, num_actions=4)
    else:
        contract.check_preset(case, max_steps=length, num_actions=2)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    shape = (4,) if case.name in REPEAT_PREVIOUS else (2,)
    contract.check_spaces(case, obs_shape=shape)


@all_cases
def test_deterministic_for_a_fixed_key(case):
    contract.check_deterministic(case)


@all_cases
def test_random_policy_returns(case):
    name = case.name
    length = _episode_length(name)
    traj = case.random
    if name in REPEAT_PREVIOUS:
        # A uniformly random action names the right suit with probability 1/4,
        # whatever the card, so a scored step is worth, in expectation,
        # (1/4 - 3/4) / (num_cards - k) = -1/2 / (num_cards - k). There are
        # num_cards - k scored steps, so the expected return is -1/2. A return is
        # 2 C / (num_cards - k) - 1 for C ~ Binomial(num_cards - k, 1/4): its
        # std is sqrt(3 / (4 (num_cards - k))) <= 0.125, so the mean of the 128
        # episodes has std <= 0.011, and 0.05 is more than 4 std.
        returns, _ = contract.check_returns_within(
            case, traj, count=2 * NUM_ENVS, length=length
        )
        contract.check_mean_near(returns, -0.5, 0.05)
    else:
        # Every step is worth 1 / max_steps, so a return is length / max_steps,
        # in (0, 1]. A uniformly random policy drops the pole after about 22
        # steps on average (CartPole's well-known random baseline).
        returns, lengths = contract.check_returns_within(case, traj, min_count=NUM_ENVS)
        np.testing.assert_allclose(returns, lengths / length, rtol=1e-5)
        assert (returns > 0).all()
        assert 15 < lengths.mean() < 30
        assert traj["terminated"].sum() == len(returns)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    episodes_per_env = 2 if case.name in REPEAT_PREVIOUS else 1
    contract.check_oracle_maximum(
        case, count=episodes_per_env * NUM_ENVS, length=_episode_length(case.name)
    )


@all_cases
def test_terminated_and_truncated_at_the_episode_end(case):
    contract.check_done_flags(case)
    # RepeatPrevious ends when the deck runs out: the task is over. The oracle
    # keeps StatelessCartPole's pole up until the time limit: the episode is
    # cut short.
    flag = "terminated" if case.name in REPEAT_PREVIOUS else "truncated"
    contract.check_ends_every(case.oracle_rollout, _episode_length(case.name), flag)


def test_repeat_previous_deals_the_deck_and_scores_the_kth_card():
    num_decks, k = REPEAT_PREVIOUS["RepeatPreviousEasy"]
    traj = CASES["RepeatPreviousEasy"].random
    obs = np.asarray(traj["obs"][:, :51])
    final = np.asarray(traj["info"]["final_observation"][:, 50])
    suits = np.argmax(obs, axis=-1)
    np.testing.assert_array_equal(obs, np.eye(4)[suits])  # one-hot
    # Over an episode the whole deck, 13 cards of each suit, is seen: 51 in view
    # and the last as the final observation.
    suits = np.concatenate([suits, np.argmax(final, axis=-1)[:, None]], axis=1)
    for env_suits in suits:
        np.testing.assert_array_equal(np.bincount(env_suits, minlength=4), [13] * 4)
    # Step t is scored against the card seen at step t - k + 1, from step k - 1.
    scale = 1 / (52 - k)
    actions = np.asarray(traj["action"][:, :51])
    expected = np.where(actions[:, k - 1 :] == suits[:, : 51 - (k - 1)], scale, -scale)
    expected = np.concatenate([np.zeros((NUM_ENVS, k - 1)), expected], axis=1)
    np.testing.assert_allclose(traj["reward"][:, :51], expected, rtol=1e-6)
    # The env has reset at step 51: a new deck, and the clock back at 0.
    assert (np.asarray(traj["state"].time[:, 51]) == 0).all()
    assert (np.asarray(traj["state"].remaining[:, 51]).sum(axis=1) == 51).all()


def test_stateless_cartpole_falling_pole_terminates():
    traj = CASES["StatelessCartPoleEasy"].random
    terminated = np.asarray(traj["terminated"])
    params = CASES["StatelessCartPoleEasy"].made[1]
    # The last observation of a fallen episode is out of bounds.
    final = np.asarray(traj["info"]["final_observation"])[terminated]
    out = (np.abs(final[:, 0]) > params.x_threshold) | (
        np.abs(final[:, 1]) > params.theta_threshold_radians
    )
    assert len(final) > 0 and out.all()


def test_stateless_cartpole_observes_position_and_angle():
    traj = CASES["StatelessCartPoleEasy"].random
    state = traj["state"]
    np.testing.assert_allclose(
        traj["obs"], np.stack([state.x, state.theta], axis=-1), rtol=0, atol=1e-7
    )


def test_stateless_cartpole_dynamics_are_cartpoles():
    env, params = CASES["StatelessCartPoleEasy"].made
    full = cartpole.CartPole()
    traj = CASES["StatelessCartPoleEasy"].random
    key = jax.random.key(0)
    for t in range(5):
        state = jax.tree.map(lambda x: jnp.asarray(x[0, t]), traj["state"])
        action = jnp.asarray(traj["action"][0, t])
        obs, next_state, reward, terminated, _ = env.step_env(
            key, state, action, params
        )
        with jax.numpy_dtype_promotion("standard"):  # gymnax's CartPole needs it
            _, full_state, _, full_terminated, _ = full.step_env(
                key, state, action, params
            )
        assert jax.tree.all(jax.tree.map(jnp.array_equal, next_state, full_state))
        np.testing.assert_array_equal(obs, [full_state.x, full_state.theta])
        assert terminated == full_terminated
        assert reward == pytest.approx(1 / 200)


def test_stateless_cartpole_custom_length():
    env, params = make("popgym::StatelessCartPole", max_steps_in_episode=25)
    assert params.max_steps_in_episode == 25
    traj = rollout(
        env,
        params,
        jax.random.key(14),
        policy=cartpole_oracle,
        num_envs=2,
        num_steps=50,
    )
    returns, lengths = completed_episodes(traj["reward"], contract.done(traj))
    np.testing.assert_array_equal(lengths, 25)
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)
    assert np.asarray(traj["truncated"]).sum() == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "1 <= k < num_decks \\* 52 = 52, got k=0"),
        (dict(k=52), "1 <= k < num_decks \\* 52 = 52, got k=52"),
        (dict(num_decks=0), "num_decks must be at least 1"),
    ],
)
def test_repeat_previous_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        popgym.RepeatPrevious(**kwargs)


def test_stateless_cartpole_rejects_bad_parameters():
    with pytest.raises(ValueError, match="max_steps_in_episode must be at least 1"):
        popgym.StatelessCartPole(max_steps_in_episode=0)
