import functools as ft

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces
from gymnax.environments.classic_control import cartpole

from memrl_eqx.envs import make, popgym

from ._helpers import (
    cartpole_oracle,
    completed_episodes,
    random_policy,
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
PRESETS = [*REPEAT_PREVIOUS, *STATELESS_CARTPOLE]
NUM_ENVS = 64


def _episode_length(name):
    """The longest an episode of a preset can be."""
    if name in REPEAT_PREVIOUS:
        num_decks, _ = REPEAT_PREVIOUS[name]
        return 52 * num_decks - 1
    return STATELESS_CARTPOLE[name]


@ft.cache
def _make(name):
    # One instance per preset, so that its rollout compiles once.
    return make(f"popgym::{name}")


def _random_or_oracle(env, key, obs, state, use_oracle):
    if isinstance(env, popgym.RepeatPrevious):
        oracle = repeat_previous_oracle(env, key, obs, state)
    else:
        oracle = cartpole_oracle(env, key, obs, state)
    return jnp.where(use_oracle, oracle, random_policy(env, key, obs, state))


def _rollout(name, seed, use_oracle):
    """`NUM_ENVS` environments for two episodes of RepeatPrevious or one (maximal)
    episode of StatelessCartPole; one compilation per preset serves every test."""
    env, params = _make(name)
    length = _episode_length(name)
    return rollout(
        env,
        params,
        jax.random.key(seed),
        jnp.array(use_oracle),
        policy=_random_or_oracle,
        num_envs=NUM_ENVS,
        num_steps=2 * length if name in REPEAT_PREVIOUS else length,
    )


@ft.cache
def _random_rollout(name):
    return _rollout(name, seed=5, use_oracle=False)


@ft.cache
def _oracle_rollout(name):
    return _rollout(name, seed=6, use_oracle=True)


def _done(traj):
    return np.asarray(traj["terminated"] | traj["truncated"])


@pytest.mark.parametrize("name", PRESETS)
def test_preset_parameters(name):
    env, params = _make(name)
    assert type(env).__name__ == name == env.name
    if name in REPEAT_PREVIOUS:
        num_decks, k = REPEAT_PREVIOUS[name]
        assert (env.num_decks, env.k, env.num_cards) == (num_decks, k, 52 * num_decks)
        assert params.max_steps_in_episode == 52 * num_decks - 1
        assert env.num_actions == 4
    else:
        assert params.max_steps_in_episode == STATELESS_CARTPOLE[name]
        assert env.num_actions == 2


@pytest.mark.parametrize("name", PRESETS)
def test_spaces_contain_what_the_env_returns(name):
    env, params = _make(name)
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box)
    assert isinstance(action_space, spaces.Discrete)
    assert action_space.n == env.num_actions
    assert obs_space.shape == ((4,) if name in REPEAT_PREVIOUS else (2,))
    assert obs_space.dtype == jnp.float32
    assert action_space.contains(action_space.sample(jax.random.key(0)))

    traj = _random_rollout(name)
    batch = traj["action"].shape
    assert batch[0] == NUM_ENVS
    # obs[:, 0] is what reset returned; the final observations include the
    # terminal ones.
    assert obs_space.contains(traj["obs"][0, 0])
    low, high = np.asarray(obs_space.low), np.asarray(obs_space.high)
    for obs in (traj["obs"], traj["info"]["final_observation"]):
        obs = np.asarray(obs)
        assert obs.dtype == np.float32 and obs.shape == batch + obs_space.shape
        assert np.all((low <= obs) & (obs <= high))
    actions = np.asarray(traj["action"])
    assert actions.dtype == np.int32
    assert np.all((0 <= actions) & (actions < action_space.n))
    assert traj["reward"].dtype == jnp.float32 and traj["reward"].shape == batch
    assert traj["terminated"].dtype == traj["truncated"].dtype == jnp.bool_


@pytest.mark.parametrize("name", PRESETS)
def test_deterministic_for_a_fixed_key(name):
    a = _rollout(name, seed=3, use_oracle=False)
    b = _rollout(name, seed=3, use_oracle=False)
    c = _rollout(name, seed=4, use_oracle=False)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a["obs"], c["obs"])


@pytest.mark.parametrize("name", PRESETS)
def test_random_policy_returns(name):
    length = _episode_length(name)
    traj = _random_rollout(name)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) >= NUM_ENVS
    assert (lengths <= length).all()
    if name in REPEAT_PREVIOUS:
        # A uniformly random action names the right suit with probability 1/4,
        # whatever the card, so a scored step is worth, in expectation,
        # (1/4 - 3/4) / (num_cards - k) = -1/2 / (num_cards - k). There are
        # num_cards - k scored steps, so the expected return is -1/2. A return is
        # 2 C / (num_cards - k) - 1 for C ~ Binomial(num_cards - k, 1/4): its
        # std is sqrt(3 / (4 (num_cards - k))) <= 0.125, so the mean of the 128
        # episodes has std <= 0.011, and 0.05 is more than 4 std.
        assert len(returns) == 2 * NUM_ENVS
        assert (lengths == length).all()
        assert (returns >= -1 - 1e-5).all() and (returns <= 1 + 1e-5).all()
        assert abs(returns.mean() + 0.5) < 0.05
    else:
        # Every step is worth 1 / max_steps, so a return is length / max_steps,
        # in (0, 1]. A uniformly random policy drops the pole after about 22
        # steps on average (CartPole's well-known random baseline).
        np.testing.assert_allclose(returns, lengths / length, rtol=1e-5)
        assert (returns > 0).all() and (returns <= 1 + 1e-5).all()
        assert 15 < lengths.mean() < 30
        assert np.asarray(traj["terminated"]).sum() == len(returns)


@pytest.mark.parametrize("name", PRESETS)
def test_oracle_reaches_the_maximum_return(name):
    length = _episode_length(name)
    traj = _oracle_rollout(name)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    episodes_per_env = 2 if name in REPEAT_PREVIOUS else 1
    assert len(returns) == episodes_per_env * NUM_ENVS
    np.testing.assert_array_equal(lengths, length)
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", PRESETS)
def test_terminated_and_truncated_at_the_episode_end(name):
    length = _episode_length(name)
    traj = _oracle_rollout(name)
    terminated = np.asarray(traj["terminated"])
    truncated = np.asarray(traj["truncated"])
    np.testing.assert_array_equal(traj["info"]["terminated"], terminated)
    np.testing.assert_array_equal(traj["info"]["truncated"], truncated)
    last = np.zeros(terminated.shape, dtype=bool)
    last[:, length - 1 :: length] = True  # the last step of every episode
    if name in REPEAT_PREVIOUS:
        # The episode ends when the deck runs out: the task is over.
        np.testing.assert_array_equal(terminated, last)
        assert not truncated.any()
    else:
        # The pole was kept up until the time limit: the episode is cut short.
        np.testing.assert_array_equal(truncated, last)
        assert not terminated.any()


def test_repeat_previous_deals_the_deck_and_scores_the_kth_card():
    num_decks, k = REPEAT_PREVIOUS["RepeatPreviousEasy"]
    traj = _random_rollout("RepeatPreviousEasy")
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
    traj = _random_rollout("StatelessCartPoleEasy")
    terminated = np.asarray(traj["terminated"])
    params = _make("StatelessCartPoleEasy")[1]
    # The last observation of a fallen episode is out of bounds.
    final = np.asarray(traj["info"]["final_observation"])[terminated]
    out = (np.abs(final[:, 0]) > params.x_threshold) | (
        np.abs(final[:, 1]) > params.theta_threshold_radians
    )
    assert len(final) > 0 and out.all()


def test_stateless_cartpole_observes_position_and_angle():
    traj = _random_rollout("StatelessCartPoleEasy")
    state = traj["state"]
    np.testing.assert_allclose(
        traj["obs"], np.stack([state.x, state.theta], axis=-1), rtol=0, atol=1e-7
    )


def test_stateless_cartpole_dynamics_are_cartpoles():
    env, params = _make("StatelessCartPoleEasy")
    full = cartpole.CartPole()
    traj = _random_rollout("StatelessCartPoleEasy")
    key = jax.random.key(0)
    for t in range(5):
        state = jax.tree.map(lambda x: x[0, t], traj["state"])
        action = traj["action"][0, t]
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
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
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
