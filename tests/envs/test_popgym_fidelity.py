"""Fidelity against the original POPGym (PyPI `popgym` 1.0.7, numpy and gymnasium).

Each test puts POPGym's environment and ours in the same hidden state (a maze, a
board, a deck order, a cart's state), drives both with the same actions step for
step, and compares what they return: observations (POPGym's integers one-hot
encoded as ours are), rewards, terminations and truncations. The tests are
skipped only where `popgym` (in the `test` extra) is not installed.
"""

import collections
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import popgym as ours
from memrl_eqx.envs.popgym._labyrinth import LabyrinthState


pytest.importorskip("popgym")

MOVES = [(0, -1), (0, 1), (-1, 0), (1, 0)]  # left, right, up, down


@eqx.filter_jit
def _run_ours(env, state, actions, keys):
    """Steps `env` (without auto-reset) from `state` through `actions`: the
    observations, rewards, terminations and truncations of every step."""
    params = env.default_params

    def body(state, xs):
        action, key = xs
        obs, state, reward, terminated, _ = env.step_env(key, state, action, params)
        truncated = env.is_truncated(state, params)
        return state, (obs, reward, terminated, truncated)

    _, out = jax.lax.scan(body, state, (actions, keys))
    return out


def _compare(env, state, popgym_env, actions, encode, *, keys=None, atol=0.0):
    """Drives POPGym's `popgym_env` and ours from the same state through `actions`
    until the episode ends; `encode` maps a POPGym observation to ours. Returns the
    number of steps taken and whether the episode was terminated (else truncated,
    or still running after the last action)."""
    if keys is None:
        keys = jax.random.split(jax.random.key(0), len(actions))
    obs, reward, terminated, truncated = jax.device_get(
        _run_ours(env, state, jnp.asarray(actions), keys)
    )
    for t, action in enumerate(actions):
        p_obs, p_reward, p_terminated, p_truncated, _ = popgym_env.step(action)
        where = f"step {t + 1}"
        np.testing.assert_allclose(obs[t], encode(p_obs), atol=atol, err_msg=where)
        np.testing.assert_allclose(reward[t], p_reward, rtol=1e-6, err_msg=where)
        assert bool(terminated[t]) == bool(p_terminated), where
        # POPGym can flag a truncation on a terminating step; ours says which.
        assert bool(truncated[t]) == (bool(p_truncated) and not p_terminated), where
        if p_terminated or p_truncated:
            return t + 1, bool(p_terminated)
    return len(actions), False


# Labyrinth Escape / Explore: POPGym's own mazes (mazelib), copied into our state.


def _distances(grid, source):
    """Breadth-first distances over the squares that are not walls (-1: none)."""
    dist = np.full(grid.shape, -1)
    dist[tuple(source)] = 0
    queue = collections.deque([tuple(source)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1]
            if inside and grid[nr, nc] != 1 and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def _walk_to(grid, start, goal):
    """The moves of a shortest path from `start` to `goal`."""
    dist = _distances(grid, goal)
    (r, c), moves = start, []
    while dist[r, c] > 0:
        for move, (dr, dc) in enumerate(MOVES):
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1]
            if inside and dist[nr, nc] == dist[r, c] - 1:
                moves.append(move)
                r, c = nr, nc
                break
    return moves


def _tour(grid, start):
    """Moves that visit every reachable square: to each unvisited square in turn
    by a shortest path from where the walk stands."""
    position, moves = tuple(start), []
    todo = {tuple(s) for s in np.argwhere(_distances(grid, start) >= 0)}
    todo.discard(position)
    while todo:
        dist = _distances(grid, position)
        target = min(todo, key=lambda square: dist[square])
        path = _walk_to(grid, position, target)
        for move in path:
            dr, dc = MOVES[move]
            position = (position[0] + dr, position[1] + dc)
            todo.discard(position)
        moves += path
    return moves


def _maze_obs(obs):
    """POPGym's maze observation (9 square types, then the last move) as ours."""
    obs = np.asarray(obs)
    return np.concatenate([np.eye(4)[obs[:9]].ravel(), np.eye(5)[obs[9]]])


@pytest.mark.parametrize("family", ["LabyrinthEscape", "LabyrinthExplore"])
def test_labyrinth_matches_popgym(family):
    pytest.importorskip("mazelib")  # POPGym's `navigation` extra
    from popgym.envs import labyrinth_escape, labyrinth_explore

    module = labyrinth_escape if family == "LabyrinthEscape" else labyrinth_explore
    env = getattr(ours, family + "Easy")()
    length = env.max_steps_in_episode
    assert length == 1023
    rng = np.random.default_rng(0)
    ends, starts = collections.Counter(), set()
    for seed in range(12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            theirs = getattr(module, family + "Easy")()
            p_obs, _ = theirs.reset(seed=seed)
        grid = np.asarray(theirs.maze.grid, dtype=np.int8)
        start = np.asarray(theirs.position, dtype=np.int32)
        state = LabyrinthState(
            grid=jnp.asarray(grid),
            position=jnp.asarray(start),
            explored=jnp.asarray(theirs.explored == 1),
            last_action=jnp.array(4, dtype=jnp.int32),
            time=jnp.array(0, dtype=jnp.int32),
        )
        np.testing.assert_array_equal(env._observation(state), _maze_obs(p_obs))
        # Every other episode follows a plan to the end (the exit, or a tour of
        # the maze) and the rest walk at random until they are truncated.
        actions = rng.integers(0, 4, size=length)
        if seed % 2:
            if family == "LabyrinthEscape":
                plan = _walk_to(grid, start, np.argwhere(grid == 3)[0])
            else:
                plan = _tour(grid, start)
            assert len(plan) < length
            actions[: len(plan)] = plan
        steps, terminated = _compare(env, state, theirs, actions, _maze_obs)
        ends[terminated] += 1
        starts.add("north" if start[0] == 0 else "west" if start[1] == 0 else "other")
        if not terminated:
            assert steps == length
    # Both ways to end, and starts on the walls where POPGym's view is off centre.
    assert ends[True] >= 6 and ends[False] >= 2
    assert {"north", "west"} <= starts
