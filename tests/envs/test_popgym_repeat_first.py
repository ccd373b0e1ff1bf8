import functools as ft

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs.popgym._repeat_first import (
    RepeatFirst,
    RepeatFirstEasy,
    RepeatFirstHard,
    RepeatFirstMedium,
    RepeatFirstState,
)

from ._helpers import completed_episodes, FAST_COMPILE, random_policy, rollout


PRESETS = {
    # class: num_decks, POPGym's presets
    RepeatFirstEasy: 1,
    RepeatFirstMedium: 8,
    RepeatFirstHard: 16,
}
NUM_ENVS = 16


@ft.cache
def _make(cls):
    # One instance per preset, so that its rollout compiles once.
    env = cls()
    return env, env.default_params


def _length(cls):
    return 52 * PRESETS[cls] - 1


def _random_or_oracle(env, key, obs, state, use_oracle):
    # The oracle reads the first card's suit from the hidden state.
    return jnp.where(use_oracle, state.first, random_policy(env, key, obs, state))


def _rollout(cls, seed, use_oracle):
    """Two whole episodes in each of `NUM_ENVS` environments; one compilation per
    preset serves every test."""
    env, params = _make(cls)
    traj = rollout(
        env,
        params,
        jax.random.key(seed),
        jnp.array(use_oracle),
        policy=_random_or_oracle,
        num_envs=NUM_ENVS,
        num_steps=2 * _length(cls),
    )
    return jax.tree.map(np.asarray, traj)


@ft.cache
def _random_rollout(cls):
    return _rollout(cls, seed=5, use_oracle=False)


@ft.cache
def _oracle_rollout(cls):
    return _rollout(cls, seed=6, use_oracle=True)


def _done(traj):
    return traj["terminated"] | traj["truncated"]


@pytest.mark.parametrize("cls", PRESETS)
def test_preset_parameters(cls):
    env, params = _make(cls)
    assert env.name == cls.__name__
    assert env.num_decks == PRESETS[cls] and env.num_cards == 52 * PRESETS[cls]
    assert params.max_steps_in_episode == _length(cls)
    assert env.num_actions == 4


@pytest.mark.parametrize("cls", PRESETS)
def test_spaces_contain_what_the_env_returns(cls):
    env, params = _make(cls)
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (4,)
    assert obs_space.dtype == jnp.float32
    assert isinstance(action_space, spaces.Discrete) and action_space.n == 4
    traj = _random_rollout(cls)
    batch = (NUM_ENVS, 2 * _length(cls))
    for obs in (traj["obs"], traj["info"]["final_observation"]):
        obs = np.asarray(obs)
        assert obs.dtype == np.float32 and obs.shape == batch + (4,)
        assert np.all((obs_space.low <= obs) & (obs <= obs_space.high))
    actions = np.asarray(traj["action"])
    assert actions.dtype == np.int32 and np.all((0 <= actions) & (actions < 4))
    assert traj["reward"].dtype == jnp.float32 and traj["reward"].shape == batch
    assert traj["terminated"].dtype == traj["truncated"].dtype == jnp.bool_
    assert env.state_space(params).contains(
        jax.tree.map(lambda x: x[0, 0], traj["state"])
    )


@pytest.mark.parametrize("cls", PRESETS)
def test_deterministic_for_a_fixed_key(cls):
    a = _random_rollout(cls)
    b = _rollout(cls, seed=5, use_oracle=False)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    # The cards dealt do not depend on the policy: another key, another deal.
    assert not np.array_equal(a["obs"], _oracle_rollout(cls)["obs"])


@pytest.mark.parametrize("cls", PRESETS)
def test_random_policy_returns(cls):
    length = _length(cls)
    traj = _random_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) == 2 * NUM_ENVS
    np.testing.assert_array_equal(lengths, length)
    assert (np.abs(returns) <= 1 + 1e-5).all()
    # Every step is scored, and a uniformly random suit is right with probability
    # 1/4 whatever the first card, so a step is worth (1/4 - 3/4) / length in
    # expectation and an episode -1/2. A return is 2 C / length - 1 with
    # C ~ Binomial(length, 1/4), of std sqrt(3 / (4 length)); the mean of the
    # episodes is within 5 standard errors.
    stderr = np.sqrt(3 / (4 * length)) / np.sqrt(len(returns))
    assert abs(returns.mean() + 0.5) < 5 * stderr


@pytest.mark.parametrize("cls", PRESETS)
def test_oracle_reaches_the_maximum_return(cls):
    traj = _oracle_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) == 2 * NUM_ENVS
    np.testing.assert_array_equal(lengths, _length(cls))
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)


@pytest.mark.parametrize("cls", PRESETS)
def test_terminated_when_the_deck_runs_out(cls):
    length = _length(cls)
    traj = _oracle_rollout(cls)
    terminated = np.asarray(traj["terminated"])
    last = np.zeros(terminated.shape, dtype=bool)
    last[:, length - 1 :: length] = True  # the last step of every episode
    np.testing.assert_array_equal(terminated, last)
    assert not np.asarray(traj["truncated"]).any()
    np.testing.assert_array_equal(traj["info"]["terminated"], terminated)


def test_deals_the_deck_and_scores_the_first_card():
    traj = _random_rollout(RepeatFirstEasy)
    obs = np.asarray(traj["obs"][:, :51])
    final = np.asarray(traj["info"]["final_observation"][:, 50])
    suits = np.argmax(obs, axis=-1)
    np.testing.assert_array_equal(obs, np.eye(4, dtype=np.float32)[suits])  # one-hot
    # Over an episode the whole deck is seen: 51 cards in view, the last as the
    # final observation.
    all_suits = np.concatenate([suits, np.argmax(final, axis=-1)[:, None]], axis=1)
    for env_suits in all_suits:
        np.testing.assert_array_equal(np.bincount(env_suits, minlength=4), [13] * 4)
    # Every step is scored against the card seen at reset.
    first = np.asarray(traj["state"].first)
    np.testing.assert_array_equal(first[:, :51], np.repeat(suits[:, :1], 51, axis=1))
    actions = np.asarray(traj["action"][:, :51])
    expected = np.where(actions == suits[:, :1], 1 / 51, -1 / 51)
    np.testing.assert_allclose(traj["reward"][:, :51], expected, rtol=1e-6)
    # The env has reset after step 51: a new deck, and the clock back at 0.
    assert (np.asarray(traj["state"].time[:, 51]) == 0).all()
    assert (np.asarray(traj["state"].remaining[:, 51]).sum(axis=1) == 51).all()
    np.testing.assert_array_equal(first[:, 51], np.argmax(traj["obs"][:, 51], axis=-1))


def test_step_by_hand():
    env = RepeatFirst(num_decks=1)
    params = env.default_params
    state = RepeatFirstState(
        first=jnp.array(2, dtype=jnp.int32),
        remaining=jnp.array([0, 2, 0, 0], dtype=jnp.int32),
        time=jnp.array(49, dtype=jnp.int32),
    )
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    key = jax.random.key(0)
    obs, next_state, reward, terminated, _ = step(key, state, jnp.int32(2), params)
    assert reward == pytest.approx(1 / 51) and not terminated
    np.testing.assert_array_equal(obs, [0, 1, 0, 0])  # the only suit left
    np.testing.assert_array_equal(next_state.remaining, [0, 1, 0, 0])
    assert next_state.first == 2 and next_state.time == 50
    # The last card is dealt on the 51st step, which ends the episode.
    obs, last_state, reward, terminated, _ = step(key, next_state, jnp.int32(1), params)
    assert reward == pytest.approx(-1 / 51) and terminated
    assert env.is_terminated(last_state, params)
    np.testing.assert_array_equal(obs, [0, 1, 0, 0])
    np.testing.assert_array_equal(last_state.remaining, [0, 0, 0, 0])


def test_custom_number_of_decks():
    env = RepeatFirst(num_decks=2)
    assert env.default_params.max_steps_in_episode == 103
    assert env.name == "RepeatFirst"


@pytest.mark.parametrize(
    "num_decks, match",
    [
        (0, "num_decks must be at least 1, got 0"),
        (True, "num_decks must be an int, got True"),
    ],
)
def test_rejects_bad_parameters(num_decks, match):
    with pytest.raises(ValueError, match=match):
        RepeatFirst(num_decks=num_decks)
