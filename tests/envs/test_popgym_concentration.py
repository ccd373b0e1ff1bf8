"""POPGym's Concentration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._concentration import (
    Concentration,
    ConcentrationEasy,
    ConcentrationHard,
    ConcentrationMedium,
    ConcentrationState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


# name: (class, num_decks, deck_type, num_values), POPGym's presets
PRESETS = {
    "ConcentrationEasy": (ConcentrationEasy, 1, "colors", 2),
    "ConcentrationMedium": (ConcentrationMedium, 2, "colors", 2),
    "ConcentrationHard": (ConcentrationHard, 1, "ranks", 13),
}
# The mean return of a uniformly random policy, measured over 1024 episodes
# (512 for Medium), standard error 0.003: matching on colour a second card
# matches about half the time, on rank 3 times in 51.
RANDOM_RETURN = {
    "ConcentrationEasy": -0.19,
    "ConcentrationMedium": -0.18,
    "ConcentrationHard": -0.83,
}
NUM_ENVS = 16


def _num_cards(name):
    return 52 * PRESETS[name][1]


def concentration_oracle(env, key, obs, state, arg=None):
    """Reads the table from the hidden state: starts a turn on the first card
    face down, and ends it on that card's first face-down partner."""
    del key, obs, arg
    face_down = ~state.face_up
    first = jnp.maximum(state.first, 0)
    positions = jnp.arange(env.num_cards)
    partner = face_down & (positions != first) & (state.values == state.values[first])
    return jnp.argmax(jnp.where(state.first >= 0, partner, face_down)).astype(jnp.int32)


# `NUM_ENVS` environments for `2 * num_cards + 1` steps (one truncated random
# episode, or two oracle ones, and a step after).
CASES = {
    name: contract.PresetCase(
        PRESETS[name][0],
        concentration_oracle,
        num_envs=NUM_ENVS,
        num_steps=2 * _num_cards(name) + 1,
    )
    for name in PRESETS
}
all_cases = contract.cases(CASES.values())


def _expected_obs(values, visible, num_values):
    symbols = np.where(visible, values, num_values)
    return np.eye(num_values + 1)[symbols].reshape(*symbols.shape[:-1], -1)


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    _, num_decks, deck_type, num_values = PRESETS[case.name]
    n = 52 * num_decks
    assert (env.num_decks, env.deck_type) == (num_decks, deck_type)
    assert (env.num_cards, env.num_values) == (n, num_values)
    # POPGym's episode length ceil(2 n - n / (2 n - 1)).
    assert np.ceil(2 * n - n / (2 * n - 1)) == 2 * n
    contract.check_preset(case, max_steps=2 * n, num_actions=n)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    n, num_values = _num_cards(case.name), PRESETS[case.name][3]
    # The state's `face_up` is boolean, which gymnax's `Box.contains` cannot
    # check under strict dtype promotion.
    contract.check_spaces(case, obs_shape=(n * (num_values + 1),), states=False)
    traj = case.random
    batch = traj["reward"].shape
    for obs in (traj["obs"], traj["info"]["final_observation"]):
        cards = obs.reshape(*batch, n, num_values + 1)
        np.testing.assert_array_equal(cards.sum(axis=-1), 1)  # one-hot per card
        assert set(np.unique(cards)) <= {0.0, 1.0}


@all_cases
def test_deterministic_for_a_fixed_key(case):
    # Another key (the oracle rollout's) deals other tables.
    contract.check_deterministic(case, state_fields=("values",))


@all_cases
def test_table_is_a_shuffled_deck(case):
    name = case.name
    n, num_values = _num_cards(name), PRESETS[name][3]
    traj = case.random
    values = np.asarray(traj["state"].values)
    for table in values[:, 0]:
        np.testing.assert_array_equal(
            np.bincount(table, minlength=num_values), [n // num_values] * num_values
        )
    # Fixed within an episode, dealt anew at reset.
    np.testing.assert_array_equal(values[:, :-1], values[:, :1].repeat(2 * n, 1))
    assert (values[:, -1] != values[:, 0]).any(axis=1).all()
    # Every card starts face down.
    reset_obs = np.asarray(traj["obs"])[:, [0, -1]]
    np.testing.assert_array_equal(
        reset_obs, _expected_obs(values[:, [0, -1]], False, num_values)
    )


@all_cases
def test_observation_shows_the_matched_and_turned_cards(case):
    name = case.name
    n, num_values = _num_cards(name), PRESETS[name][3]
    traj = case.random
    state = traj["state"]
    positions = np.arange(n)
    first = np.asarray(state.first)[..., None]
    action = np.asarray(traj["action"])[..., None]
    # After a step: the matched cards, and the cards of the turn, including the
    # one just turned (even when the turn has just ended).
    visible = np.asarray(state.face_up) | (positions == first) | (positions == action)
    np.testing.assert_array_equal(
        traj["info"]["final_observation"],
        _expected_obs(np.asarray(state.values), visible, num_values),
    )


@all_cases
def test_random_policy_returns(case):
    n = _num_cards(case.name)
    length = 2 * n
    traj = case.random
    # A random policy cannot match every pair in time: one truncated episode each.
    returns, _ = contract.check_returns_within(
        case, traj, count=NUM_ENVS, length=length
    )
    contract.check_ends_every(traj, length, "truncated")
    # No closed form for the expected return, but the expected reward of a
    # uniformly random card given the state is: with k cards matched, a first
    # card costs 1 / L with probability k / n; a second card matches with
    # probability c / n (c the first card's face-down partners) and otherwise
    # costs 2 / L. The return minus these expectations summed over the episode
    # is a sum of martingale differences: centred, with the summed conditional
    # variances as variance. Its mean is within 4.5 standard errors of 0.
    state = traj["state"]
    face_up = np.asarray(state.face_up)[:, :length]
    values = np.asarray(state.values)[:, :length]
    first = np.asarray(state.first)[:, :length]
    k = face_up.sum(axis=-1)
    first_value = np.take_along_axis(values, np.maximum(first, 0)[..., None], -1)
    partners = (~face_up & (values == first_value)).sum(axis=-1) - 1
    success, failure = 2 / n, -1 / length
    has_first = first >= 0
    outcomes = [  # (probability, reward) of each case
        (np.where(has_first, 0.0, k / n), failure),
        (np.where(has_first, k / n, 0.0), 2 * failure),
        (np.where(has_first, partners / n, 0.0), success),
        (np.where(has_first, 1 - (k + partners) / n, 0.0), 2 * failure),
    ]
    mean = sum(p * r for p, r in outcomes)
    var = sum(p * r**2 for p, r in outcomes) - mean**2
    deviation = returns - mean.sum(axis=1)
    assert abs(deviation.mean()) < 4.5 * np.sqrt(var.sum() / NUM_ENVS**2)
    # The returns themselves: an episode's std is about 0.1, so the mean of
    # NUM_ENVS = 16 has a standard error under 0.02.
    contract.check_mean_near(returns, RANDOM_RETURN[case.name], 0.09)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    n = _num_cards(case.name)
    # Every pair matched in n steps: the return 1, and a termination.
    contract.check_oracle_maximum(case, count=2 * NUM_ENVS, length=n)
    contract.check_ends_every(case.oracle_rollout, n)
    contract.check_done_flags(case)


def test_turns_by_hand():
    env = ConcentrationEasy()  # 52 cards matched on colour, L = 104
    params = env.default_params
    values = np.arange(52) % 2
    state = ConcentrationState(
        values=jnp.asarray(values, dtype=jnp.int32),
        face_up=jnp.zeros(52, dtype=jnp.bool_),
        first=jnp.array(-1, dtype=jnp.int32),
        time=jnp.array(0, dtype=jnp.int32),
    )
    failure, success = -1 / 104, 1 / 26
    # (card turned, reward, the cards shown after it, the matched cards, first)
    script = [
        (0, 0.0, {0}, set(), 0),
        (1, 2 * failure, {0, 1}, set(), -1),  # no match
        (0, 0.0, {0}, set(), 0),
        (0, 2 * failure, {0}, set(), -1),  # the same card twice
        (2, 0.0, {2}, set(), 2),
        (4, success, {2, 4}, {2, 4}, -1),  # a match stays face up
        (2, failure, {2, 4}, {2, 4}, -1),  # a matched card: the turn ends
        (3, 0.0, {2, 3, 4}, {2, 4}, 3),
        (4, 2 * failure, {2, 3, 4}, {2, 4}, -1),  # ends the turn, two cards
        (3, 0.0, {2, 3, 4}, {2, 4}, 3),
        (5, success, {2, 3, 4, 5}, {2, 3, 4, 5}, -1),
    ]
    key = jax.random.key(0)
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    for time, (card, reward, shown, matched, first) in enumerate(script, start=1):
        obs, state, r, terminated, _ = step(key, state, card, params)
        assert r == pytest.approx(reward), (time, card)
        visible = np.isin(np.arange(52), list(shown))
        np.testing.assert_array_equal(obs, _expected_obs(values, visible, 2))
        np.testing.assert_array_equal(np.flatnonzero(state.face_up), sorted(matched))
        assert state.first == first and state.time == time and not terminated
    # The last pair: the episode terminates.
    state = ConcentrationState(
        values=state.values,
        face_up=jnp.ones(52, dtype=jnp.bool_).at[jnp.array([10, 12])].set(False),
        first=jnp.array(10, dtype=jnp.int32),
        time=state.time,
    )
    obs, state, r, terminated, _ = step(key, state, 12, params)
    assert r == pytest.approx(success) and terminated and state.face_up.all()
    assert env.is_terminated(state, params)
    np.testing.assert_array_equal(obs, _expected_obs(values, True, 2))


@all_cases
def test_rewards_and_turns_follow_the_rules(case):
    """Every step of the random rollout against the rules, from the state it was
    taken in: the reward, the matched cards and the turn after it."""
    n = _num_cards(case.name)
    length = 2 * n
    traj = case.random
    state = traj["state"]
    face_up = np.asarray(state.face_up)
    values = np.asarray(state.values)
    first = np.asarray(state.first)
    card = np.asarray(traj["action"])
    has_first = first >= 0
    value = np.take_along_axis(values, card[..., None], -1)[..., 0]
    first_value = np.take_along_axis(values, np.maximum(first, 0)[..., None], -1)
    already_matched = np.take_along_axis(face_up, card[..., None], -1)[..., 0]
    match = has_first & (first != card) & (first_value[..., 0] == value)
    match &= ~already_matched
    expected = np.where(
        already_matched,
        -(1 + has_first) / length,
        np.where(has_first, np.where(match, 2 / n, -2 / length), 0.0),
    )
    np.testing.assert_allclose(traj["reward"], expected, rtol=1e-6)
    # Some steps of every kind were checked.
    assert already_matched.any() and match.any() and (has_first & ~match).any()
    stepped = ~contract.done(traj)[:, :-1]  # the steps not followed by a reset
    in_play = (np.arange(n) == card[..., None]) | (np.arange(n) == first[..., None])
    next_face_up = face_up | (match[..., None] & in_play)
    next_first = np.where(~has_first & ~already_matched, card, -1)
    np.testing.assert_array_equal(
        face_up[:, 1:][stepped], next_face_up[:, :-1][stepped]
    )
    np.testing.assert_array_equal(first[:, 1:][stepped], next_first[:, :-1][stepped])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_decks=0), "num_decks must be at least 1, got 0"),
        (dict(deck_type="suits"), "deck_type must be 'colors' or 'ranks'"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Concentration(**kwargs)
