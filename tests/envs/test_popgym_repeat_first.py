import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._repeat_first import (
    RepeatFirst,
    RepeatFirstEasy,
    RepeatFirstHard,
    RepeatFirstMedium,
    RepeatFirstState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


PRESETS = {
    # class: num_decks, POPGym's presets
    RepeatFirstEasy: 1,
    RepeatFirstMedium: 8,
    RepeatFirstHard: 16,
}
NUM_ENVS = 16


def _length(cls):
    return 52 * PRESETS[cls] - 1


def _oracle(env, key, obs, state, arg=None):
    """Reads the first card's suit from the hidden state."""
    del env, key, obs, arg
    return state.first


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
    num_decks = PRESETS[case.env]
    assert env.num_decks == num_decks and env.num_cards == 52 * num_decks
    contract.check_preset(case, max_steps=_length(case.env), num_actions=4)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    contract.check_spaces(case, obs_shape=(4,))


@all_cases
def test_deterministic_for_a_fixed_key(case):
    # The cards dealt do not depend on the policy: another key, another deal.
    contract.check_deterministic(case)


@all_cases
def test_random_policy_returns(case):
    length = _length(case.env)
    returns, _ = contract.check_returns_within(
        case, case.random, count=2 * NUM_ENVS, length=length
    )
    # Every step is scored, and a uniformly random suit is right with probability
    # 1/4 whatever the first card, so a step is worth (1/4 - 3/4) / length in
    # expectation and an episode -1/2. A return is 2 C / length - 1 with
    # C ~ Binomial(length, 1/4), of std sqrt(3 / (4 length)); the mean of the
    # episodes is within 5 standard errors.
    stderr = np.sqrt(3 / (4 * length)) / np.sqrt(len(returns))
    contract.check_mean_near(returns, -0.5, 5 * stderr)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    contract.check_oracle_maximum(case, count=2 * NUM_ENVS, length=_length(case.env))


@all_cases
def test_terminated_when_the_deck_runs_out(case):
    contract.check_done_flags(case)
    contract.check_ends_every(case.oracle_rollout, _length(case.env))


def test_deals_the_deck_and_scores_the_first_card():
    traj = CASES[RepeatFirstEasy].random
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
