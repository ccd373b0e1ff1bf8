import functools as ft

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs.popgym._battleship import (
    _place_ship,
    Battleship,
    BattleshipEasy,
    BattleshipHard,
    BattleshipMedium,
    BattleshipState,
)

from ._helpers import completed_episodes, FAST_COMPILE, random_policy, rollout


PRESETS = {
    # class: board_size, POPGym's presets (all with ships of 2, 3, 3, 4 tiles)
    BattleshipEasy: 8,
    BattleshipMedium: 10,
    BattleshipHard: 12,
}
NUM_ENVS = 16
SHIPS = 12  # tiles covered by the ships of every preset


@ft.cache
def _make(cls):
    # One instance per preset, so that its rollout compiles once.
    env = cls()
    return env, env.default_params


def _oracle(env, key, obs, state, arg=None):
    """Fires at the first ship tile not yet hit, read from the hidden board."""
    del env, key, obs, arg
    return jnp.argmax((state.ships & ~state.fired).ravel()).astype(jnp.int32)


def _random_or_oracle(env, key, obs, state, use_oracle):
    oracle = _oracle(env, key, obs, state)
    return jnp.where(use_oracle, oracle, random_policy(env, key, obs, state))


def _rollout(cls, seed, use_oracle):
    """`NUM_ENVS` boards for `N` shots: one (nearly always truncated) random
    episode, or many oracle ones. One compilation per preset serves every test."""
    env, params = _make(cls)
    return rollout(
        env,
        params,
        jax.random.key(seed),
        jnp.array(use_oracle),
        policy=_random_or_oracle,
        num_envs=NUM_ENVS,
        num_steps=env.num_tiles,
    )


@ft.cache
def _random_rollout(cls):
    return _rollout(cls, seed=5, use_oracle=False)


@ft.cache
def _oracle_rollout(cls):
    return _rollout(cls, seed=6, use_oracle=True)


def _done(traj):
    return np.asarray(traj["terminated"] | traj["truncated"])


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


@pytest.mark.parametrize("cls", PRESETS)
def test_preset_parameters(cls):
    env, params = _make(cls)
    n = PRESETS[cls]
    assert env.name == cls.__name__
    assert (env.board_size, env.ship_sizes) == (n, (2, 3, 3, 4))
    assert params.max_steps_in_episode == env.num_tiles == n * n
    assert env.num_actions == n * n and env.num_ship_tiles == SHIPS


@pytest.mark.parametrize("cls", PRESETS)
def test_spaces_contain_what_the_env_returns(cls):
    env, params = _make(cls)
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.dtype == jnp.float32
    assert isinstance(action_space, spaces.Discrete)
    assert action_space.n == env.num_actions
    assert obs_space.shape == (2 + 2 * env.board_size,)

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
    assert not np.array_equal(a["state"].ships, c["state"].ships)
    assert not np.array_equal(a["obs"], c["obs"])


@pytest.mark.parametrize("cls", PRESETS)
def test_fleet_is_placed_without_overlap(cls):
    n = PRESETS[cls]
    traj = _random_rollout(cls)
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


@pytest.mark.parametrize("cls", PRESETS)
def test_random_policy_returns(cls):
    env, _ = _make(cls)
    traj = _random_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) >= NUM_ENVS
    assert (lengths <= env.num_tiles).all()
    low = -env.num_tiles / (env.num_tiles - SHIPS)
    assert (returns >= low - 1e-5).all() and (returns <= 1 + 1e-5).all()
    # The exact expectation (about -0.3) against the mean of 16 episodes: a
    # return's standard deviation is about 0.15, so five standard errors are
    # about 0.2.
    expected = _random_expectation(env.num_tiles, SHIPS)
    stderr = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - expected) < 5 * stderr


@pytest.mark.parametrize("cls", PRESETS)
def test_oracle_reaches_the_maximum_return(cls):
    env, _ = _make(cls)
    traj = _oracle_rollout(cls)
    returns, lengths = completed_episodes(traj["reward"], _done(traj))
    assert len(returns) == NUM_ENVS * (env.num_tiles // SHIPS)
    np.testing.assert_array_equal(lengths, SHIPS)
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)


@pytest.mark.parametrize("cls", PRESETS)
def test_terminated_and_truncated(cls):
    env, _ = _make(cls)
    # The oracle sinks the fleet in 12 shots: a termination.
    traj = _oracle_rollout(cls)
    terminated = np.asarray(traj["terminated"])
    last = np.zeros(terminated.shape, dtype=bool)
    last[:, SHIPS - 1 :: SHIPS] = True
    np.testing.assert_array_equal(terminated, last)
    assert not np.asarray(traj["truncated"]).any()
    np.testing.assert_array_equal(traj["info"]["terminated"], terminated)
    # Random shots: terminated exactly when the 12th ship tile is hit, truncated
    # after N shots otherwise.
    traj = _random_rollout(cls)
    state = traj["state"]
    hits = np.asarray(state.hits) + (np.asarray(traj["reward"]) > 0)
    terminated = np.asarray(traj["terminated"])
    truncated = np.asarray(traj["truncated"])
    np.testing.assert_array_equal(terminated, hits == SHIPS)
    time = np.asarray(state.time) + 1
    np.testing.assert_array_equal(truncated, (time == env.num_tiles) & ~terminated)
    np.testing.assert_array_equal(traj["info"]["truncated"], truncated)


def test_shots_are_scored_and_observed():
    env, _ = _make(BattleshipEasy)
    traj = _random_rollout(BattleshipEasy)
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
