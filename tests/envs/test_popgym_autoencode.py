import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._autoencode import (
    Autoencode,
    AutoencodeEasy,
    AutoencodeHard,
    AutoencodeMedium,
    AutoencodeState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


PRESETS = {
    # class: num_decks, POPGym's presets
    AutoencodeEasy: 1,
    AutoencodeMedium: 2,
    AutoencodeHard: 3,
}
NUM_ENVS = 16


def _num_cards(cls):
    return 52 * PRESETS[cls]


def _length(cls):
    return 2 * _num_cards(cls) - 1


def _oracle(env, key, obs, state, arg=None):
    """Reads the card due from the hidden state (while watching, the index is
    clipped and the action ignored)."""
    del key, obs, arg
    n = env.num_cards
    return state.cards[jnp.clip(2 * n - 2 - state.time, 0, n - 1)]


# Two whole episodes in each of `NUM_ENVS` environments.
CASES = {
    cls: contract.PresetCase(
        cls, _oracle, num_envs=NUM_ENVS, num_steps=2 * _length(cls)
    )
    for cls in PRESETS
}
all_cases = contract.cases(CASES.values())


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    assert env.num_decks == PRESETS[case.env]
    assert env.num_cards == _num_cards(case.env)
    contract.check_preset(case, max_steps=_length(case.env), num_actions=4)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    contract.check_spaces(case, obs_shape=(6,))


@all_cases
def test_deterministic_for_a_fixed_key(case):
    # The cards dealt do not depend on the policy: another key, another deal.
    contract.check_deterministic(case)


@all_cases
def test_random_policy_returns(case):
    num_cards = _num_cards(case.env)
    returns, _ = contract.check_returns_within(
        case, case.random, count=2 * NUM_ENVS, length=_length(case.env)
    )
    # The num_cards steps of the play phase are scored, and a uniformly random
    # suit is right with probability 1/4 whatever the card due, so a scored step
    # is worth (1/4 - 3/4) / num_cards in expectation and an episode -1/2. A
    # return is 2 C / num_cards - 1 with C ~ Binomial(num_cards, 1/4), of std
    # sqrt(3 / (4 num_cards)); the mean of the episodes is within 5 standard
    # errors.
    stderr = np.sqrt(3 / (4 * num_cards)) / np.sqrt(len(returns))
    contract.check_mean_near(returns, -0.5, 5 * stderr)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    contract.check_oracle_maximum(case, count=2 * NUM_ENVS, length=_length(case.env))


@all_cases
def test_terminated_when_the_deck_is_recited(case):
    contract.check_done_flags(case)
    contract.check_ends_every(case.oracle_rollout, _length(case.env))


def test_shows_the_deck_then_scores_it_backwards():
    n = 52
    traj = CASES[AutoencodeEasy].random
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
