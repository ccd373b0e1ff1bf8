import functools as ft

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs.popgym._minesweeper import (
    _mine_counts,
    MineSweeper,
    MineSweeperEasy,
    MineSweeperHard,
    MineSweeperMedium,
    MineSweeperState,
)

from ._helpers import completed_episodes, FAST_COMPILE, random_policy, rollout


PRESETS = {
    # class: (rows, cols, num_mines), POPGym's presets
    MineSweeperEasy: (4, 4, 2),
    MineSweeperMedium: (6, 6, 6),
    MineSweeperHard: (8, 8, 10),
}
NUM_ENVS = 32


@ft.cache
def _make(cls):
    # One instance per preset, so that its rollout compiles once.
    env = cls()
    return env, env.default_params


def _oracle(env, key, obs, state, arg=None):
    """Clicks the first covered free tile, read from the hidden board."""
    del env, key, obs, arg
    return jnp.argmax((~state.mines & ~state.uncovered).ravel()).astype(jnp.int32)


def _random_or_oracle(env, key, obs, state, use_oracle):
    oracle = _oracle(env, key, obs, state)
    return jnp.where(use_oracle, oracle, random_policy(env, key, obs, state))


def _rollout(cls, seed, use_oracle):
    """`NUM_ENVS` boards for `2 L` clicks: two oracle episodes, or many random
    ones. One compilation per preset serves every test."""
    env, params = _make(cls)
    return rollout(
        env,
        params,
        jax.random.key(seed),
        jnp.array(use_oracle),
        policy=_random_or_oracle,
        num_envs=NUM_ENVS,
        num_steps=2 * env.num_free,
    )


@ft.cache
def _random_rollout(cls):
    return _rollout(cls, seed=5, use_oracle=False)


@ft.cache
def _oracle_rollout(cls):
    return _rollout(cls, seed=6, use_oracle=True)


def _done(traj):
    return np.asarray(traj["terminated"] | traj["truncated"])


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


@pytest.mark.parametrize("cls", PRESETS)
def test_preset_parameters(cls):
    env, params = _make(cls)
    rows, cols, num_mines = PRESETS[cls]
    assert env.name == cls.__name__
    assert (env.rows, env.cols, env.num_mines) == (rows, cols, num_mines)
    assert params.max_steps_in_episode == env.num_free == rows * cols - num_mines
    assert env.num_actions == rows * cols
    assert env.num_counts == min(num_mines + 1, 10)


@pytest.mark.parametrize("cls", PRESETS)
def test_spaces_contain_what_the_env_returns(cls):
    env, params = _make(cls)
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.dtype == jnp.float32
    assert isinstance(action_space, spaces.Discrete)
    assert action_space.n == env.num_actions
    assert obs_space.shape == (env.num_counts + env.rows + env.cols,)

    traj = _random_rollout(cls)
    batch = traj["action"].shape
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


@pytest.mark.parametrize("cls", PRESETS)
def test_deterministic_for_a_fixed_key(cls):
    a = _random_rollout(cls)
    b = _rollout(cls, seed=5, use_oracle=False)
    c = _rollout(cls, seed=4, use_oracle=False)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a["state"].mines, c["state"].mines)
    assert not np.array_equal(a["obs"], c["obs"])


@pytest.mark.parametrize("cls", PRESETS)
def test_random_policy_returns(cls):
    env, _ = _make(cls)
    traj = _random_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) >= 2 * NUM_ENVS
    assert (lengths >= 1).all() and (lengths <= env.num_free).all()
    assert (returns >= -1 - 1e-5).all() and (returns <= 1 + 1e-5).all()
    # The exact expectation (about -0.5: a mine comes soon), against the mean of
    # hundreds of episodes; five standard errors of tolerance. The episodes of an
    # environment are independent (the board is redrawn at every reset).
    expected = _random_expectation(*PRESETS[cls])
    stderr = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - expected) < 5 * stderr + 1e-3


@pytest.mark.parametrize("cls", PRESETS)
def test_oracle_reaches_the_maximum_return(cls):
    env, _ = _make(cls)
    traj = _oracle_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) == 2 * NUM_ENVS
    np.testing.assert_array_equal(lengths, env.num_free)
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)


@pytest.mark.parametrize("cls", PRESETS)
def test_terminated_and_truncated(cls):
    env, _ = _make(cls)
    free = env.num_free
    # The oracle clears the board in exactly L clicks: a termination, not a
    # truncation, although the time limit is reached on the same click.
    traj = _oracle_rollout(cls)
    terminated = np.asarray(traj["terminated"])
    last = np.zeros(terminated.shape, dtype=bool)
    last[:, free - 1 :: free] = True
    np.testing.assert_array_equal(terminated, last)
    assert not np.asarray(traj["truncated"]).any()
    np.testing.assert_array_equal(traj["info"]["terminated"], terminated)
    # Random clicks: an episode ends on a mine (terminated, reward
    # -0.5 - 1/L), on clearing the board (terminated) or after L clicks
    # (truncated), and only then.
    traj = _random_rollout(cls)
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
    if cls is MineSweeperEasy:
        # A board survives its 14 clicks with probability (14/16)^14 = 0.15.
        assert truncated.any()


def test_clicks_are_scored_and_observed():
    env, _ = _make(MineSweeperEasy)
    free = env.num_free
    traj = _random_rollout(MineSweeperEasy)
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
