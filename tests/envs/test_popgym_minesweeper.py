import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._minesweeper import (
    _mine_counts,
    MineSweeper,
    MineSweeperEasy,
    MineSweeperHard,
    MineSweeperMedium,
    MineSweeperState,
)

from . import popgym_contract as contract
from ._helpers import FAST_COMPILE


PRESETS = {
    # class: (rows, cols, num_mines), POPGym's presets
    MineSweeperEasy: (4, 4, 2),
    MineSweeperMedium: (6, 6, 6),
    MineSweeperHard: (8, 8, 10),
}
NUM_ENVS = 32


def _oracle(env, key, obs, state, arg=None):
    """Clicks the first covered free tile, read from the hidden board."""
    del env, key, obs, arg
    return jnp.argmax((~state.mines & ~state.uncovered).ravel()).astype(jnp.int32)


def _num_free(cls):
    rows, cols, num_mines = PRESETS[cls]
    return rows * cols - num_mines


# `NUM_ENVS` boards for `2 L` clicks: two oracle episodes, or many random ones.
CASES = {
    cls: contract.PresetCase(
        cls, _oracle, num_envs=NUM_ENVS, num_steps=2 * _num_free(cls)
    )
    for cls in PRESETS
}
all_cases = contract.cases(CASES.values())


def _random_expectation(rows, cols, num_mines):
    """The exact expected return of uniformly random clicks.

    A random click hits a mine with probability `M / N`, an uncovered tile with
    probability `r / N` and a new free tile with probability `(L - r) / N`, where
    `N = rows * cols`, `M = num_mines`, `L = N - M` and `r` is the number of tiles
    uncovered so far. So `r` is a Markov chain, and the expected return is the sum
    over clicks `t < L` of the expected reward of the episodes still running,
    which `alive[r]` (the probability of running with `r` uncovered) tracks."""
    n, m = rows * cols, num_mines
    free = n - m
    alive = np.zeros(free + 1)
    alive[0] = 1.0
    total = 0.0
    for _ in range(free):
        r = np.arange(free + 1)
        p_mine, p_seen, p_new = m / n, r / n, (free - r) / n
        total += np.sum(
            alive
            * (
                p_mine * (-0.5 - 1 / free)
                + p_seen * (-0.5 / (free - 2))
                + p_new * (1 / free)
            )
        )
        nxt = np.zeros_like(alive)
        nxt += alive * p_seen
        nxt[1:] += (alive * p_new)[:-1]
        nxt[free] = 0.0  # every free tile uncovered: the episode is over
        alive = nxt
    return total


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    rows, cols, num_mines = PRESETS[case.env]
    assert (env.rows, env.cols, env.num_mines) == (rows, cols, num_mines)
    assert env.num_free == rows * cols - num_mines
    contract.check_preset(case, max_steps=env.num_free, num_actions=rows * cols)
    assert env.num_counts == min(num_mines + 1, 10)


@all_cases
def test_spaces_contain_what_the_env_returns(case):
    env, _ = case.made
    # The board is boolean, which gymnax's `Box.contains` cannot check under
    # strict dtype promotion.
    contract.check_spaces(
        case, obs_shape=(env.num_counts + env.rows + env.cols,), states=False
    )


@all_cases
def test_deterministic_for_a_fixed_key(case):
    contract.check_deterministic(case, state_fields=("mines",))


@all_cases
def test_random_policy_returns(case):
    env, _ = case.made
    returns, lengths = contract.check_returns_within(
        case, case.random, min_count=2 * NUM_ENVS
    )
    assert (lengths >= 1).all()
    # The exact expectation (about -0.5: a mine comes soon), against the mean of
    # hundreds of episodes; five standard errors of tolerance. The episodes of an
    # environment are independent (the board is redrawn at every reset).
    expected = _random_expectation(*PRESETS[case.env])
    stderr = returns.std() / np.sqrt(len(returns))
    contract.check_mean_near(returns, expected, 5 * stderr + 1e-3)


@all_cases
def test_oracle_reaches_the_maximum_return(case):
    contract.check_oracle_maximum(case, count=2 * NUM_ENVS, length=_num_free(case.env))


@all_cases
def test_terminated_and_truncated(case):
    env, _ = case.made
    free = env.num_free
    contract.check_done_flags(case)
    # The oracle clears the board in exactly L clicks: a termination, not a
    # truncation, although the time limit is reached on the same click.
    contract.check_ends_every(case.oracle_rollout, free)
    # Random clicks: an episode ends on a mine (terminated, reward
    # -0.5 - 1/L), on clearing the board (terminated) or after L clicks
    # (truncated), and only then.
    traj = case.random
    state, action = traj["state"], np.asarray(traj["action"])
    rows, cols = action // env.cols, action % env.cols
    env_idx, time_idx = np.indices(action.shape)
    mine = np.asarray(state.mines)[env_idx, time_idx, rows, cols]
    reward = np.asarray(traj["reward"])
    terminated = np.asarray(traj["terminated"])
    truncated = np.asarray(traj["truncated"])
    np.testing.assert_allclose(reward[mine], -0.5 - 1 / free, rtol=1e-6)
    uncovered = np.asarray(state.uncovered).sum(axis=(2, 3))
    cleared = ~mine & (uncovered == free - 1) & (reward > 0)
    np.testing.assert_array_equal(terminated, mine | cleared)
    time = np.asarray(state.time) + 1
    np.testing.assert_array_equal(truncated, (time == free) & ~terminated)
    if case.env is MineSweeperEasy:
        # A board survives its 14 clicks with probability (14/16)^14 = 0.15.
        assert truncated.any()


def test_clicks_are_scored_and_observed():
    case = CASES[MineSweeperEasy]
    free = case.made[0].num_free
    traj = case.random
    state = traj["state"]
    action = np.asarray(traj["action"])
    rows, cols = action // 4, action % 4
    env_idx, time_idx = np.indices(action.shape)
    mines = np.asarray(state.mines)
    mine = mines[env_idx, time_idx, rows, cols]
    seen = np.asarray(state.uncovered)[env_idx, time_idx, rows, cols]
    expected = np.where(
        mine, -0.5 - 1 / free, np.where(seen, -0.5 / (free - 2), 1 / free)
    )
    np.testing.assert_allclose(traj["reward"], expected, rtol=1e-6)
    # The number shown is the count of mines in the 3x3 block, by hand.
    padded = np.pad(mines, [(0, 0), (0, 0), (1, 1), (1, 1)])
    count = sum(
        padded[env_idx, time_idx, rows + dr, cols + dc]
        for dr in range(3)
        for dc in range(3)
    )
    final = np.asarray(traj["info"]["final_observation"])
    np.testing.assert_array_equal(final[..., :3], np.eye(3)[count])
    np.testing.assert_array_equal(final[..., 3:7], np.eye(4)[rows])
    np.testing.assert_array_equal(final[..., 7:], np.eye(4)[cols])
    # Every board has two mines; nothing is uncovered at reset, and the first
    # observation of an episode is all zeros.
    assert (mines.sum(axis=(2, 3)) == 2).all()
    start = np.asarray(state.time) == 0
    assert start.sum() > NUM_ENVS
    assert not np.asarray(state.uncovered)[start].any()
    assert not np.asarray(traj["obs"])[start].any()


def test_hand_computed_board():
    env = MineSweeper(rows=3, cols=4, num_mines=2)
    free = 10
    mines = jnp.zeros((3, 4), dtype=bool).at[0, 0].set(True).at[2, 2].set(True)
    counts = _mine_counts(mines)
    np.testing.assert_array_equal(counts, [[1, 1, 0, 0], [1, 2, 1, 1], [0, 1, 1, 1]])
    state = MineSweeperState(
        mines=mines,
        counts=counts,
        uncovered=jnp.zeros((3, 4), dtype=bool),
        exploded=jnp.array(False),
        time=jnp.array(0, dtype=jnp.int32),
    )
    step = jax.jit(env.step_env, compiler_options=FAST_COMPILE)
    key = jax.random.key(1)
    # (1, 1): free, next to both mines.
    obs, state, reward, terminated, _ = step(key, state, 5, None)
    np.testing.assert_array_equal(obs, [0, 0, 1] + [0, 1, 0] + [0, 1, 0, 0])
    assert reward == pytest.approx(1 / free) and not terminated
    # (1, 1) again: already uncovered.
    obs, state, reward, terminated, _ = step(key, state, 5, None)
    assert reward == pytest.approx(-0.5 / (free - 2)) and not terminated
    # (2, 2): a mine, counting itself.
    obs, state, reward, terminated, _ = step(key, state, 10, None)
    np.testing.assert_array_equal(obs, [0, 1, 0] + [0, 0, 1] + [0, 0, 1, 0])
    assert reward == pytest.approx(-0.5 - 1 / free) and terminated
    assert int(state.time) == 3 and not env.is_truncated(state, None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rows=0), "rows must be at least 1, got 0"),
        (dict(cols=0), "cols must be at least 1, got 0"),
        (dict(num_mines=0), "num_mines must be at least 1, got 0"),
        (dict(num_mines=14), "num_mines <= rows \\* cols - 3 = 13, got num_mines=14"),
        (dict(num_mines=True), "num_mines must be an int, got True"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MineSweeper(**kwargs)
