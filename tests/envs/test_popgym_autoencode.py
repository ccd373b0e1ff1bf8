import functools as ft

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs.popgym._autoencode import (
    Autoencode,
    AutoencodeEasy,
    AutoencodeHard,
    AutoencodeMedium,
    AutoencodeState,
)

from ._helpers import completed_episodes, FAST_COMPILE, random_policy, rollout


PRESETS = {
    # class: num_decks, POPGym's presets
    AutoencodeEasy: 1,
    AutoencodeMedium: 2,
    AutoencodeHard: 3,
}
NUM_ENVS = 16


@ft.cache
def _make(cls):
    # One instance per preset, so that its rollout compiles once.
    env = cls()
    return env, env.default_params


def _num_cards(cls):
    return 52 * PRESETS[cls]


def _length(cls):
    return 2 * _num_cards(cls) - 1


def _random_or_oracle(env, key, obs, state, use_oracle):
    # The oracle reads the card due from the hidden state (while watching, the
    # index is clipped and the action ignored).
    n = env.num_cards
    oracle = state.cards[jnp.clip(2 * n - 2 - state.time, 0, n - 1)]
    return jnp.where(use_oracle, oracle, random_policy(env, key, obs, state))


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
    assert env.num_decks == PRESETS[cls] and env.num_cards == _num_cards(cls)
    assert params.max_steps_in_episode == _length(cls)
    assert env.num_actions == 4


@pytest.mark.parametrize("cls", PRESETS)
def test_spaces_contain_what_the_env_returns(cls):
    env, params = _make(cls)
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (6,)
    assert obs_space.dtype == jnp.float32
    assert isinstance(action_space, spaces.Discrete) and action_space.n == 4
    batch = (NUM_ENVS, 2 * _length(cls))
    for traj in (_random_rollout(cls), _oracle_rollout(cls)):
        for obs in (traj["obs"], traj["info"]["final_observation"]):
            assert obs.dtype == np.float32 and obs.shape == batch + (6,)
            assert np.all((obs_space.low <= obs) & (obs <= obs_space.high))
        actions = traj["action"]
        assert actions.dtype == np.int32 and np.all((0 <= actions) & (actions < 4))
        assert traj["reward"].dtype == np.float32 and traj["reward"].shape == batch
        assert traj["terminated"].dtype == traj["truncated"].dtype == np.bool_
        state = jax.tree.map(lambda x: x[0, _length(cls) - 1], traj["state"])
        assert env.state_space(params).contains(state)


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
    num_cards = _num_cards(cls)
    traj = _random_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) == 2 * NUM_ENVS
    np.testing.assert_array_equal(lengths, _length(cls))
    assert (np.abs(returns) <= 1 + 1e-5).all()
    # The num_cards steps of the play phase are scored, and a uniformly random
    # suit is right with probability 1/4 whatever the card due, so a scored step
    # is worth (1/4 - 3/4) / num_cards in expectation and an episode -1/2. A
    # return is 2 C / num_cards - 1 with C ~ Binomial(num_cards, 1/4), of std
    # sqrt(3 / (4 num_cards)); the mean of the episodes is within 5 standard
    # errors.
    stderr = np.sqrt(3 / (4 * num_cards)) / np.sqrt(len(returns))
    assert abs(returns.mean() + 0.5) < 5 * stderr


@pytest.mark.parametrize("cls", PRESETS)
def test_oracle_reaches_the_maximum_return(cls):
    traj = _oracle_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) == 2 * NUM_ENVS
    np.testing.assert_array_equal(lengths, _length(cls))
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)


@pytest.mark.parametrize("cls", PRESETS)
def test_terminated_when_the_deck_is_recited(cls):
    length = _length(cls)
    traj = _oracle_rollout(cls)
    last = np.zeros(traj["terminated"].shape, dtype=bool)
    last[:, length - 1 :: length] = True  # the last step of every episode
    np.testing.assert_array_equal(traj["terminated"], last)
    assert not traj["truncated"].any()
    np.testing.assert_array_equal(traj["info"]["terminated"], traj["terminated"])


def test_shows_the_deck_then_scores_it_backwards():
    n = 52
    traj = _random_rollout(AutoencodeEasy)
    obs = traj["obs"][:, : 2 * n - 1]
    flags = np.argmax(obs[..., :2], axis=-1)
    shown = np.argmax(obs[..., 2:], axis=-1)
    eye2, eye4 = np.eye(2, dtype=np.float32), np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(obs, np.concatenate([eye2[flags], eye4[shown]], -1))
    # Watching (flag 1) while cards 0..n-2 are shown; the last card comes with the
    # flag at play (0), and then suit 0 is shown until the end.
    np.testing.assert_array_equal(flags[:, : n - 1], 1)
    np.testing.assert_array_equal(flags[:, n - 1 :], 0)
    np.testing.assert_array_equal(shown[:, n:], 0)
    # The whole deck, 13 cards of each suit, is shown, and kept in the state.
    cards = shown[:, :n]
    for env_cards in cards:
        np.testing.assert_array_equal(np.bincount(env_cards, minlength=4), 13)
    np.testing.assert_array_equal(traj["state"].cards[:, n - 1], cards)
    # No reward while watching; then step n - 1 + i is scored against the card
    # shown (n - 1 - i)-th: the deck backwards.
    reward = traj["reward"][:, : 2 * n - 1]
    np.testing.assert_array_equal(reward[:, : n - 1], 0.0)
    actions = traj["action"][:, n - 1 : 2 * n - 1]
    expected = np.where(actions == cards[:, ::-1], 1 / n, -1 / n)
    np.testing.assert_allclose(reward[:, n - 1 :], expected, rtol=1e-6)
    # The env has reset after the last step: a new deck, and the clock back at 0.
    state = traj["state"]
    assert (state.time[:, 2 * n - 1] == 0).all()
    assert (state.remaining[:, 2 * n - 1].sum(axis=1) == n - 1).all()
    np.testing.assert_array_equal(traj["obs"][:, 2 * n - 1, :2], eye2[[1] * NUM_ENVS])


def test_step_by_hand():
    env = Autoencode(num_decks=1)
    params = env.default_params
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    key = jax.random.key(0)
    cards = jnp.arange(52, dtype=jnp.int32) % 4  # suits 0, 1, 2, 3, 0, ...
    state = AutoencodeState(
        cards=cards.at[51].set(0),
        remaining=jnp.array([0, 0, 0, 1], dtype=jnp.int32),
        time=jnp.array(50, dtype=jnp.int32),
    )
    action = jnp.array(2, dtype=jnp.int32)
    # The last card is dealt, with the flag at play; the action is ignored.
    obs, state, reward, terminated, _ = step(key, state, action, params)
    assert reward == 0.0 and not terminated
    np.testing.assert_array_equal(obs, [1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(state.cards, cards)
    np.testing.assert_array_equal(state.remaining, 0)
    # Play: the last card (suit 3) first, then card 50 (suit 2), ...
    for t, suit in [(51, 3), (52, 2), (53, 1), (101, 1), (102, 0)]:
        state = AutoencodeState(
            cards=cards, remaining=state.remaining, time=jnp.array(t, dtype=jnp.int32)
        )
        right = jnp.array(suit, dtype=jnp.int32)
        wrong = jnp.array((suit + 1) % 4, dtype=jnp.int32)
        obs, after, reward, terminated, _ = step(key, state, right, params)
        assert reward == pytest.approx(1 / 52)
        assert terminated == (t == 102) == env.is_terminated(after, params)
        np.testing.assert_array_equal(obs, [1, 0, 1, 0, 0, 0])  # nothing shown
        np.testing.assert_array_equal(after.cards, cards)
        np.testing.assert_array_equal(after.remaining, 0)
        _, _, reward, _, _ = step(key, state, wrong, params)
        assert reward == pytest.approx(-1 / 52)


def test_custom_number_of_decks():
    env = Autoencode(num_decks=4)
    assert env.default_params.max_steps_in_episode == 415
    assert env.name == "Autoencode"


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="num_decks must be at least 1, got 0"):
        Autoencode(num_decks=0)
