import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._battleship import (
    _place_ship,
    Battleship,
    BattleshipEasy,
    BattleshipHard,
    BattleshipMedium,
    BattleshipState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


PRESETS = {
    # class: board_size, POPGym's presets (all with ships of 2, 3, 3, 4 tiles)
    BattleshipEasy: 8,
    BattleshipMedium: 10,
    BattleshipHard: 12,
}
NUM_ENVS = 16
SHIPS = 12  # tiles covered by the ships of every preset


def _oracle(env, key, obs, state, arg=None):
    """Fires at the first ship tile not yet hit, read from the hidden board."""
    del env, key, obs, arg
    return jnp.argmax((state.ships & ~state.fired).ravel()).astype(jnp.int32)


# `NUM_ENVS` boards for `N` shots: one (nearly always truncated) random episode,
# or many oracle ones.
CASES = {
    cls: contract.PresetCase(cls, _oracle, num_envs=NUM_ENVS, num_steps=n * n)
    for cls, n in PRESETS.items()
}
all_cases = contract.cases(CASES.values())


def _random_expectation(num_tiles, num_ship_tiles):
    """The exact expected return of uniformly random shots.

    A random shot hits a new ship tile with probability `(S - h) / N`, where `h`
    is the number of ship tiles hit so far, and is a miss otherwise. So `h` is a
    Markov chain, and the expected return is the sum over the `N` shots of the
    expected reward of the episodes still running (`alive[h]`: the probability of
    running with `h` hits)."""
    n, s = num_tiles, num_ship_tiles
    alive = np.zeros(s + 1)
    alive[0] = 1.0
    total = 0.0
    h = np.arange(s + 1)
    for _ in range(n):
        p_hit = (s - h) / n
        total += np.sum(alive * (p_hit / s - (1 - p_hit) / (n - s)))
        nxt = alive * (1 - p_hit)
        nxt[1:] += (alive * p_hit)[:-1]
        nxt[s] = 0.0  # the fleet is sunk: the episode is over
        alive = nxt
    return total


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    n = PRESETS[case.env]
    assert (env.board_size, env.ship_sizes) == (n, (2, 3, 3, 4))
    assert env.num_tiles == n * n and env.num_ship_tiles == SHIPS
    contract.check_preset(case, max_steps=n * n, num_actions=n * n)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    env, _ = case.made
    # The boards are boolean, which gymnax's `Box.contains` cannot check under
    # strict dtype promotion.
    contract.check_spaces(case, obs_shape=(2 + 2 * env.board_size,), states=False)


@all_cases
def test_deterministic_for_a_fixed_key(case):
    contract.check_deterministic(case, state_fields=("ships",))


@all_cases
def test_fleet_is_placed_without_overlap(case):
    n = PRESETS[case.env]
    traj = case.random
    boards = np.asarray(traj["state"].ships)
    # Four ships of 12 tiles in all cover 12 tiles only if none overlap.
    assert (boards.sum(axis=(2, 3)) == SHIPS).all()
    # Ships are redrawn at reset, and only then.
    start = np.asarray(traj["state"].time) == 0
    changed = (boards[:, 1:] != boards[:, :-1]).any(axis=(2, 3))
    np.testing.assert_array_equal(changed, start[:, 1:])
    assert not np.array_equal(boards[0, 0], boards[1, 0])
    assert boards.shape[-2:] == (n, n)


def test_a_ship_is_placed_evenly_among_the_free_placements():
    # On a 3x3 board whose middle row is taken, a 3-tile ship fits only in the
    # top or the bottom row.
    occupied = jnp.zeros((3, 3), dtype=bool).at[1].set(True)
    place = jax.jit(
        jax.vmap(lambda uniform: _place_ship(uniform, occupied, jnp.array(3))),
        compiler_options=FAST_COMPILE,
    )
    # Evenly spread numbers in [0, 1): the first half picks the first placement.
    boards = np.asarray(place(jnp.arange(200, dtype=jnp.float32) / 200))
    top = boards[:, 0].all(axis=1) & ~boards[:, 2].any(axis=1)
    bottom = boards[:, 2].all(axis=1) & ~boards[:, 0].any(axis=1)
    assert (top ^ bottom).all() and boards[:, 1].all()
    assert top.sum() == 100


@all_cases
def test_random_policy_returns(case):
    env, _ = case.made
    low = -env.num_tiles / (env.num_tiles - SHIPS)
    returns, _ = contract.check_returns_within(
        case, case.random, low, min_count=NUM_ENVS
    )
    # The exact expectation (about -0.3) against the mean of 16 episodes: a
    # return's standard deviation is about 0.15, so five standard errors are
    # about 0.2.
    expected = _random_expectation(env.num_tiles, SHIPS)
    stderr = returns.std() / np.sqrt(len(returns))
    contract.check_mean_near(returns, expected, 5 * stderr)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    env, _ = case.made
    contract.check_oracle_maximum(
        case, count=NUM_ENVS * (env.num_tiles // SHIPS), length=SHIPS
    )


@all_cases
def test_terminated_and_truncated(case):
    env, _ = case.made
    contract.check_done_flags(case)
    # The oracle sinks the fleet in 12 shots: a termination.
    contract.check_ends_every(case.oracle_rollout, SHIPS)
    # Random shots: terminated exactly when the 12th ship tile is hit, truncated
    # after N shots otherwise.
    traj = case.random
    state = traj["state"]
    hits = np.asarray(state.hits) + (np.asarray(traj["reward"]) > 0)
    terminated = np.asarray(traj["terminated"])
    truncated = np.asarray(traj["truncated"])
    np.testing.assert_array_equal(terminated, hits == SHIPS)
    time = np.asarray(state.time) + 1
    np.testing.assert_array_equal(truncated, (time == env.num_tiles) & ~terminated)
    np.testing.assert_array_equal(traj["info"]["truncated"], truncated)


def test_shots_are_scored_and_observed():
    traj = CASES[BattleshipEasy].random
    state = traj["state"]
    action = np.asarray(traj["action"])
    rows, cols = action // 8, action % 8
    env_idx, time_idx = np.indices(action.shape)
    ship = np.asarray(state.ships)[env_idx, time_idx, rows, cols]
    fired = np.asarray(state.fired)[env_idx, time_idx, rows, cols]
    hit = ship & ~fired
    np.testing.assert_allclose(
        traj["reward"], np.where(hit, 1 / SHIPS, -1 / (64 - SHIPS)), rtol=1e-6
    )
    final = np.asarray(traj["info"]["final_observation"])
    np.testing.assert_array_equal(final[..., :2], np.eye(2)[hit.astype(int)])
    np.testing.assert_array_equal(final[..., 2:10], np.eye(8)[rows])
    np.testing.assert_array_equal(final[..., 10:], np.eye(8)[cols])
    start = np.asarray(state.time) == 0
    assert not np.asarray(traj["obs"])[start].any()
    assert not np.asarray(state.fired)[start].any()


def test_hand_computed_board():
    env = Battleship(board_size=3, ship_sizes=(2,))
    ships = jnp.zeros((3, 3), dtype=bool).at[1, 0].set(True).at[1, 1].set(True)
    state = BattleshipState(
        ships=ships,
        fired=jnp.zeros((3, 3), dtype=bool),
        hits=jnp.array(0, dtype=jnp.int32),
        time=jnp.array(0, dtype=jnp.int32),
    )
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    key = jax.random.key(0)
    outcomes = []
    # (1, 0) hits, again misses, (0, 0) misses, (1, 1) hits and sinks the fleet.
    for action in (3, 3, 0, 4):
        obs, state, reward, terminated, _ = step(key, state, action, None)
        outcomes.append((obs[:2].tolist(), float(reward), bool(terminated)))
    assert outcomes == [
        ([0.0, 1.0], pytest.approx(1 / 2), False),
        ([1.0, 0.0], pytest.approx(-1 / 7), False),
        ([1.0, 0.0], pytest.approx(-1 / 7), False),
        ([0.0, 1.0], pytest.approx(1 / 2), True),
    ]
    np.testing.assert_array_equal(obs[2:], [0, 1, 0] + [0, 1, 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(board_size=0), "board_size must be at least 1, got 0"),
        (dict(ship_sizes=()), "ship_sizes must name at least one ship"),
        (dict(board_size=3, ship_sizes=(4,)), "each be in 1..board_size = 1..3"),
        (dict(board_size=4, ship_sizes=(4, 4, 4)), "may not fit a board of size 4"),
        (dict(board_size=2, ship_sizes=(1, 1, 1, 1)), "must leave a free tile"),
        (dict(ship_sizes=(2, True)), "ship_sizes must be an int, got True"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Battleship(**kwargs)
