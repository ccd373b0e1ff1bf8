import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._count_recall import (
    CountRecall,
    CountRecallEasy,
    CountRecallHard,
    CountRecallMedium,
    CountRecallState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


PRESETS = {
    # class: (num_decks, deck_type, num_kinds, max_count), POPGym's presets
    CountRecallEasy: (1, "colors", 2, 26),
    CountRecallMedium: (2, "suits", 4, 26),
    CountRecallHard: (4, "ranks", 13, 16),
}
NUM_ENVS = 16


def _length(cls):
    return 52 * PRESETS[cls][0] - 1


def _oracle(env, key, obs, state, arg=None):
    """Reads the tally of the queried kind from the hidden state."""
    del env, key, obs, arg
    return state.counts[state.query]


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
    num_decks, deck_type, num_kinds, max_count = PRESETS[case.env]
    env, _ = case.made
    assert (env.num_decks, env.deck_type) == (num_decks, deck_type)
    assert (env.num_kinds, env.max_count) == (num_kinds, max_count)
    contract.check_preset(case, max_steps=_length(case.env), num_actions=max_count + 1)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    num_kinds = PRESETS[case.env][2]
    # The oracle's answers, the true counts, are all actions.
    contract.check_spaces(case, obs_shape=(2 * num_kinds,))


@all_cases
def test_deterministic_for_a_fixed_key(case):
    # The cards dealt do not depend on the policy: another key, another deal.
    contract.check_deterministic(case)


@all_cases
def test_random_policy_returns(case):
    max_count = PRESETS[case.env][3]
    length = _length(case.env)
    returns, _ = contract.check_returns_within(
        case, case.random, count=2 * NUM_ENVS, length=length
    )
    # Every step is scored, and its answer is always one of the max_count + 1
    # actions, so a uniformly random action is right with probability
    # p = 1 / (max_count + 1): an episode is worth (2 p - 1) in expectation. A
    # return is 2 C / length - 1 with C ~ Binomial(length, p), of std
    # 2 sqrt(p (1 - p) / length); the mean of the episodes is within 5 standard
    # errors.
    p = 1 / (max_count + 1)
    stderr = 2 * np.sqrt(p * (1 - p) / length) / np.sqrt(len(returns))
    contract.check_mean_near(returns, 2 * p - 1, 5 * stderr)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    contract.check_oracle_maximum(case, count=2 * NUM_ENVS, length=_length(case.env))


@all_cases
def test_terminated_when_the_decks_run_out(case):
    contract.check_done_flags(case)
    contract.check_ends_every(case.oracle_rollout, _length(case.env))


@pytest.mark.parametrize("cls", [CountRecallEasy, CountRecallHard])
def test_deals_two_decks_and_scores_the_tally(cls):
    _, _, num_kinds, max_count = PRESETS[cls]
    length = _length(cls)
    traj = CASES[cls].random
    obs = np.asarray(traj["obs"][:, :length])
    final = np.asarray(traj["info"]["final_observation"][:, length - 1])
    values = np.argmax(obs[..., :num_kinds], axis=-1)
    queries = np.argmax(obs[..., num_kinds:], axis=-1)
    eye = np.eye(num_kinds, dtype=np.float32)
    np.testing.assert_array_equal(obs, np.concatenate([eye[values], eye[queries]], -1))
    # Over an episode both whole decks are seen, the last cards as the final
    # observation: max_count cards of each kind in each.
    for cards, last in (
        (values, final[:, :num_kinds]),
        (queries, final[:, num_kinds:]),
    ):
        cards = np.concatenate([cards, np.argmax(last, axis=-1)[:, None]], axis=1)
        for env_cards in cards:
            np.testing.assert_array_equal(
                np.bincount(env_cards, minlength=num_kinds), max_count
            )
    # The answer at step t is the number of values of the kind queried at step t
    # among the values seen at steps 0..t.
    tallies = np.cumsum(eye[values], axis=1)  # (envs, steps, kinds)
    answers = np.take_along_axis(tallies, queries[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(
        answers,
        np.take_along_axis(traj["state"].counts[:, :length], queries[..., None], -1)[
            ..., 0
        ],
    )
    actions = np.asarray(traj["action"][:, :length])
    expected = np.where(actions == answers, 1 / length, -1 / length)
    np.testing.assert_allclose(traj["reward"][:, :length], expected, rtol=1e-6)
    # The env has reset after the last step: fresh decks, one card dealt.
    state = traj["state"]
    assert (np.asarray(state.time[:, length]) == 0).all()
    assert (np.asarray(state.counts[:, length]).sum(axis=1) == 1).all()
    assert (np.asarray(state.value_remaining[:, length]).sum(axis=1) == length).all()


def test_step_by_hand():
    env = CountRecall(num_decks=1, deck_type="colors")
    params = env.default_params
    state = CountRecallState(
        counts=jnp.array([3, 5], dtype=jnp.int32),
        query=jnp.array(1, dtype=jnp.int32),
        value_remaining=jnp.array([0, 2], dtype=jnp.int32),
        query_remaining=jnp.array([4, 0], dtype=jnp.int32),
        time=jnp.array(7, dtype=jnp.int32),
    )
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    key = jax.random.key(0)
    # Five red cards seen, and the question is about red.
    obs, next_state, reward, terminated, _ = step(key, state, jnp.int32(5), params)
    assert reward == pytest.approx(1 / 51) and not terminated
    # Only red is left in the value deck and black in the query deck.
    np.testing.assert_array_equal(obs, [0, 1, 1, 0])
    np.testing.assert_array_equal(next_state.counts, [3, 6])
    assert next_state.query == 0 and next_state.time == 8
    np.testing.assert_array_equal(next_state.value_remaining, [0, 1])
    np.testing.assert_array_equal(next_state.query_remaining, [3, 0])
    # Now black is asked about: three seen.
    _, _, reward, _, _ = step(key, next_state, jnp.int32(6), params)
    assert reward == pytest.approx(-1 / 51)
    _, _, reward, _, _ = step(key, next_state, jnp.int32(3), params)
    assert reward == pytest.approx(1 / 51)
    # The 51st step ends the episode.
    last = CountRecallState(
        counts=jnp.array([26, 25], dtype=jnp.int32),
        query=jnp.array(0, dtype=jnp.int32),
        value_remaining=jnp.array([0, 1], dtype=jnp.int32),
        query_remaining=jnp.array([1, 0], dtype=jnp.int32),
        time=jnp.array(50, dtype=jnp.int32),
    )
    _, final, reward, terminated, _ = step(key, last, jnp.int32(26), params)
    assert reward == pytest.approx(1 / 51) and terminated
    assert env.is_terminated(final, params)
    np.testing.assert_array_equal(final.counts, [26, 26])


def test_custom_parameters():
    env = CountRecall(num_decks=3, deck_type="suits")
    assert env.default_params.max_steps_in_episode == 155
    assert (env.num_kinds, env.max_count, env.num_actions) == (4, 39, 40)
    assert env.observation_space().shape == (8,)
    assert env.name == "CountRecall"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_decks=0), "num_decks must be at least 1, got 0"),
        (dict(deck_type="jokers"), "deck_type must be one of .*, got 'jokers'"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CountRecall(**kwargs)
