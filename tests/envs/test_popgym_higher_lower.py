import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._higher_lower import (
    HigherLower,
    HigherLowerEasy,
    HigherLowerHard,
    HigherLowerMedium,
    HigherLowerState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


PRESETS = {
    # class: num_decks, POPGym's presets
    HigherLowerEasy: 1,
    HigherLowerMedium: 2,
    HigherLowerHard: 3,
}
# The mean and std of the episode return of the card-counting policy (guess the
# likelier side given the cards left, "higher" on a tie), estimated from 20000
# simulated episodes per preset (standard errors below 0.0007). A memoryless
# policy (higher from ranks 0..6, lower from 7..12) averages 0.498 on all three.
COUNTING_RETURN = {
    HigherLowerEasy: (0.528, 0.096),
    HigherLowerMedium: (0.516, 0.069),
    HigherLowerHard: (0.512, 0.057),
}
NUM_ENVS = 16


def _length(cls):
    return 52 * PRESETS[cls] - 1


def _counting_policy(env, key, obs, state, arg=None):
    """Reads the cards left from the hidden state (what a perfect memory knows)
    and guesses the likelier side: the best policy there is."""
    del env, key, obs, arg
    ranks = jnp.arange(13)
    higher = jnp.sum(jnp.where(ranks > state.rank, state.remaining, 0))
    lower = jnp.sum(jnp.where(ranks < state.rank, state.remaining, 0))
    return jnp.where(higher >= lower, 0, 1).astype(jnp.int32)


# Two whole episodes in each of `NUM_ENVS` environments; the card-counting
# policy is the "oracle".
CASES = {
    cls: contract.PresetCase(
        cls, _counting_policy, num_envs=NUM_ENVS, num_steps=2 * _length(cls)
    )
    for cls in PRESETS
}
all_cases = contract.cases(CASES.values())


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    assert env.num_decks == PRESETS[case.env]
    assert env.num_cards == 52 * PRESETS[case.env]
    contract.check_preset(case, max_steps=_length(case.env), num_actions=2)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    contract.check_spaces(case, obs_shape=(13,))


@all_cases
def test_deterministic_for_a_fixed_key(case):
    # The cards dealt do not depend on the policy: another key, another deal.
    contract.check_deterministic(case)


@all_cases
def test_random_policy_returns(case):
    length = _length(case.env)
    num_cards = length + 1
    bound = length / num_cards
    returns, _ = contract.check_returns_within(
        case, case.random, -bound, bound, count=2 * NUM_ENVS, length=length
    )
    # A uniformly random guess is a fair coin independent of the cards, so every
    # step is worth 0 in expectation, and so is an episode. The steps' rewards are
    # uncorrelated (each is multiplied by an independent fair sign), each of
    # variance at most 1 / num_cards^2: a return has std at most
    # sqrt(length) / num_cards, and the mean of the episodes is within 5 standard
    # errors of 0.
    stderr = np.sqrt(length) / num_cards / np.sqrt(len(returns))
    contract.check_mean_near(returns, 0.0, 5 * stderr)


@all_cases
def test_counting_policy_returns(case):
    # No policy can be sure of the maximum return (the next card is unknown);
    # the card-counting policy is the best there is, and averages the simulated
    # value, to within 5 standard errors.
    length = _length(case.env)
    bound = length / (length + 1)
    returns, _ = contract.check_returns_within(
        case, case.oracle_rollout, -bound, bound, count=2 * NUM_ENVS, length=length
    )
    mean, std = COUNTING_RETURN[case.env]
    contract.check_mean_near(returns, mean, 5 * std / np.sqrt(len(returns)))


@all_cases
def test_terminated_when_the_deck_runs_out(case):
    contract.check_done_flags(case)
    contract.check_ends_every(case.oracle_rollout, _length(case.env))


@pytest.mark.parametrize("use_counting", [False, True])
def test_deals_the_deck_and_scores_the_guess(use_counting):
    cls = HigherLowerEasy
    traj = CASES[cls].oracle_rollout if use_counting else CASES[cls].random
    obs = traj["obs"][:, :51]
    ranks = np.argmax(obs, axis=-1)
    np.testing.assert_array_equal(obs, np.eye(13, dtype=np.float32)[ranks])
    np.testing.assert_array_equal(traj["state"].rank[:, :51], ranks)
    # Over an episode the whole deck, 4 cards of each rank, is seen: 51 in view
    # and the last as the final observation.
    last = np.argmax(traj["info"]["final_observation"][:, 50], axis=-1)
    ranks = np.concatenate([ranks, last[:, None]], axis=1)
    for env_ranks in ranks:
        np.testing.assert_array_equal(np.bincount(env_ranks, minlength=13), 4)
    # The state's tally is the cards not yet seen.
    seen = np.cumsum(np.eye(13, dtype=np.int32)[ranks[:, :51]], axis=1)
    np.testing.assert_array_equal(traj["state"].remaining[:, :51], 4 - seen)
    # Step t guesses about the card seen at step t + 1 (0 higher, 1 lower).
    current, following = ranks[:, :-1], ranks[:, 1:]
    guess_higher = traj["action"][:, :51] == 0
    expected = np.where((following > current) == guess_higher, 1 / 52, -1 / 52)
    expected = np.where(following == current, 0.0, expected)
    np.testing.assert_allclose(traj["reward"][:, :51], expected, rtol=1e-6)
    assert (traj["reward"][:, :51] == 0).any()  # pushes happen
    # The env has reset after step 51: a new deck, and the clock back at 0.
    assert (traj["state"].time[:, 51] == 0).all()
    assert (traj["state"].remaining[:, 51].sum(axis=1) == 51).all()


def test_step_by_hand():
    env = HigherLower(num_decks=1)
    params = env.default_params
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    key = jax.random.key(0)
    higher, lower = jnp.array(0, dtype=jnp.int32), jnp.array(1, dtype=jnp.int32)

    def state(rank, remaining, time):
        return HigherLowerState(
            rank=jnp.array(rank, dtype=jnp.int32),
            remaining=jnp.array(remaining, dtype=jnp.int32),
            time=jnp.array(time, dtype=jnp.int32),
        )

    # A seven (rank 6) in view and only nines (rank 8) left: higher wins.
    nines = [0] * 8 + [2] + [0] * 4
    obs, after, reward, terminated, _ = step(key, state(6, nines, 49), higher, params)
    assert reward == pytest.approx(1 / 52) and not terminated
    np.testing.assert_array_equal(obs, np.eye(13)[8])
    assert after.rank == 8 and after.remaining[8] == 1 and after.time == 50
    _, _, reward, _, _ = step(key, state(6, nines, 49), lower, params)
    assert reward == pytest.approx(-1 / 52)
    # From a king (rank 12) lower wins.
    _, _, reward, _, _ = step(key, state(12, nines, 49), lower, params)
    assert reward == pytest.approx(1 / 52)
    # A nine after a nine is a push, whatever the guess; the last card ends the
    # episode.
    for guess in (higher, lower):
        _, final, reward, terminated, _ = step(key, after, guess, params)
        assert reward == 0.0 and terminated
        assert env.is_terminated(final, params)


def test_custom_number_of_decks():
    env = HigherLower(num_decks=4)
    assert env.default_params.max_steps_in_episode == 207
    assert env.name == "HigherLower"


@pytest.mark.parametrize("num_decks", [0, -1])
def test_rejects_bad_parameters(num_decks):
    with pytest.raises(
        ValueError, match=f"num_decks must be at least 1, got {num_decks}"
    ):
        HigherLower(num_decks=num_decks)
