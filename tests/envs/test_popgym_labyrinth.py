import collections
import functools as ft

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs.popgym._labyrinth import (
    LabyrinthEscape,
    LabyrinthEscapeEasy,
    LabyrinthEscapeHard,
    LabyrinthEscapeMedium,
    LabyrinthExplore,
    LabyrinthExploreEasy,
    LabyrinthExploreHard,
    LabyrinthExploreMedium,
)

from . import popgym_contract as contract


PRESETS = {
    # class: maze_dims, POPGym's presets (all episode_length=1024: 1023 steps)
    LabyrinthEscapeEasy: (10, 10),
    LabyrinthEscapeMedium: (14, 14),
    LabyrinthEscapeHard: (18, 18),
    LabyrinthExploreEasy: (10, 10),
    LabyrinthExploreMedium: (14, 14),
    LabyrinthExploreHard: (18, 18),
}
# Rollouts (1024 steps, a maze generated at every auto-reset) are the costly part
# of these tests: they run on the Easy presets; every preset's parameters are
# checked, and the generator is the same code at every size.
ROLLOUT_PRESETS = [LabyrinthEscapeEasy, LabyrinthExploreEasy]
NUM_ENVS = 16
LENGTH = 1024  # the rollouts' length, and POPGym's `episode_length`
MAX_STEPS = LENGTH - 1  # POPGym truncates after `episode_length - 1` steps
MOVES = [(0, -1), (0, 1), (-1, 0), (1, 0)]  # left, right, up, down
WALL, GOAL = 1, 3


def _plan_oracle(env, key, obs, state, arg):
    """The moves planned for this maze: `plans[i]` for the maze `grids[i]`,
    found by comparing grids (the policy does not know which environment of the
    batch it acts in)."""
    del env, key, obs
    grids, plans = arg
    index = jnp.argmax(jnp.all(grids == state.grid[None], axis=(1, 2)))
    return plans[index, jnp.minimum(state.time, plans.shape[1] - 1)]


def _no_plans(case):
    height, width = case.made[0].grid_shape
    return (
        jnp.zeros((NUM_ENVS, height, width), dtype=jnp.int8),
        jnp.zeros((NUM_ENVS, LENGTH), dtype=jnp.int32),
    )


def _plans(case):
    """The first episode of every environment follows a plan computed from its
    maze: a shortest path to the goal, or a shortest walk through the maze."""
    grids, starts = _first_mazes(case)
    plan = _escape_plan if issubclass(case.env, LabyrinthEscape) else _explore_plan
    plans = np.zeros((NUM_ENVS, LENGTH), dtype=np.int32)
    for i, (grid, start) in enumerate(zip(grids, starts)):
        moves = plan(grid, start)
        plans[i, : len(moves)] = moves
    return jnp.asarray(grids), jnp.asarray(plans)


# `NUM_ENVS` mazes for `LENGTH` steps: the first episode of every environment
# completes. The oracle rollout shares the random one's seed, hence its mazes.
CASES = {
    cls: contract.PresetCase(
        cls,
        _plan_oracle,
        num_envs=NUM_ENVS,
        num_steps=LENGTH,
        oracle_seed=5,
        oracle_arg=_plans,
        placeholder_arg=_no_plans,
    )
    for cls in PRESETS
}
all_cases = contract.cases(CASES.values())
rollout_cases = contract.cases(CASES[cls] for cls in ROLLOUT_PRESETS)


def _first_mazes(case):
    """The grids and starts of the first episode of every environment of the
    random rollout (a rollout with the same seed starts from the same mazes,
    whatever the policy)."""
    state = case.random["state"]
    return np.asarray(state.grid[:, 0]), np.asarray(state.position[:, 0])


def _distances(grid, source):
    """Breadth-first search over the squares that are not walls."""
    dist = np.full(grid.shape, -1)
    dist[tuple(source)] = 0
    queue = collections.deque([tuple(source)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if (
                0 <= nr < grid.shape[0]
                and 0 <= nc < grid.shape[1]
                and grid[nr, nc] != WALL
                and dist[nr, nc] < 0
            ):
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def _escape_plan(grid, start):
    """The moves of a shortest path to the goal: down the distances to it."""
    goal = np.argwhere(grid == GOAL)[0]
    dist = _distances(grid, goal)
    (r, c), moves = start, []
    while dist[r, c] > 0:
        for move, (dr, dc) in enumerate(MOVES):
            nr, nc = r + dr, c + dc
            if 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1]:
                if dist[nr, nc] == dist[r, c] - 1:
                    moves.append(move)
                    r, c = nr, nc
                    break
    return moves


def _explore_plan(grid, start):
    """A shortest walk through every square of a perfect maze (a tree): depth
    first, each square's deepest branch last, and no way back from the last
    one. It has `2 (V - 1) - D` moves, for `V` squares and `D` the distance to the
    farthest."""
    dist = _distances(grid, tuple(start))

    def children(r, c):
        for move, (dr, dc) in enumerate(MOVES):
            nr, nc = r + dr, c + dc
            if 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1]:
                if dist[nr, nc] == dist[r, c] + 1:
                    yield move, (nr, nc)

    @ft.cache
    def height(square):
        return max((1 + height(child) for _, child in children(*square)), default=0)

    moves = []

    def visit(square, final):
        branches = sorted(children(*square), key=lambda branch: height(branch[1]))
        for i, (move, child) in enumerate(branches):
            last = final and i == len(branches) - 1
            moves.append(move)
            visit(child, last)
            if not last:
                moves.append(move ^ 1)  # the opposite move: 0<->1, 2<->3

    visit(tuple(start), True)
    return moves


def _first_episode(traj):
    """Each environment's first return and length."""
    done = contract.done(traj)
    assert done.any(axis=1).all()
    lengths = np.argmax(done, axis=1) + 1
    reward = np.asarray(traj["reward"], dtype=np.float64)
    returns = np.array([r[:n].sum() for r, n in zip(reward, lengths)])
    return returns, lengths


@all_cases
def test_preset_parameters(case):
    env, _ = case.made
    dims = PRESETS[case.env]
    assert env.maze_dims == dims
    assert env.grid_shape == (dims[0] + 1, dims[1] + 1)
    assert env.episode_length == LENGTH and env.max_steps_in_episode == MAX_STEPS
    assert not env.centred_view
    contract.check_preset(case, max_steps=MAX_STEPS, num_actions=4)


@rollout_cases
def test_spaces_contain_what_the_env_returns(case):
    # The explored squares are boolean, which gymnax's `Box.contains` cannot
    # check under strict dtype promotion.
    obs_space, _ = contract.check_spaces(case, obs_shape=(41,), states=False)
    np.testing.assert_array_equal([obs_space.low, obs_space.high], [0, 1])


@rollout_cases
def test_deterministic_for_a_fixed_key(case):
    # Rerunning a 1024-step rollout costs seconds, so: the same key gives the same
    # maze (the oracle rollout shares the random one's seed, hence its resets),
    # and the moves are deterministic (checked step by step in
    # `test_moves_rewards_and_observations`); different keys (the environments of
    # a batch) give different mazes.
    a, b = case.rollouts
    for x, y in zip(jax.tree.leaves(a["state"]), jax.tree.leaves(b["state"])):
        np.testing.assert_array_equal(x[:, 0], y[:, 0])
    np.testing.assert_array_equal(a["obs"][:, 0], b["obs"][:, 0])
    grids = np.asarray(a["state"].grid[:, 0])
    assert len({grid.tobytes() for grid in grids}) == NUM_ENVS


@rollout_cases
def test_flags_in_info(case):
    contract.check_done_flags(case)


@rollout_cases
def test_mazes_are_perfect_and_entered_from_the_outer_wall(case):
    env, _ = case.made
    height, width = env.grid_shape
    state = case.random["state"]
    start = np.asarray(state.time) == 0
    grids = np.asarray(state.grid)[start]
    positions = np.asarray(state.position)[start]
    assert len(grids) >= NUM_ENVS
    escape = issubclass(case.env, LabyrinthEscape)
    for grid, position in zip(grids, positions):
        # Walls everywhere but the cells (odd coordinates) and some passages; the
        # start (and the goal) on the outer wall, next to a cell.
        assert grid[1::2, 1::2].min() == 0 == grid[1::2, 1::2].max()
        assert (grid[::2, ::2] == WALL).all()
        assert grid[tuple(position)] == 2 and (grid == 2).sum() == 1
        assert (grid == GOAL).sum() == int(escape)
        border = np.ones(grid.shape, dtype=bool)
        border[1:-1, 1:-1] = False
        openings = (grid[border] != WALL).sum()
        assert openings == 1 + int(escape)
        # Connected: a flood fill from the start reaches every square that is
        # not a wall...
        dist = _distances(grid, position)
        np.testing.assert_array_equal(dist >= 0, grid != WALL)
        # ...and a tree: V squares, V - 1 adjacent pairs.
        free = grid != WALL
        pairs = (free[1:] & free[:-1]).sum() + (free[:, 1:] & free[:, :-1]).sum()
        assert pairs == free.sum() - 1 == 2 * env.num_cells + int(escape) - 1
        if escape:
            goal = np.argwhere(grid == GOAL)[0]
            opposite = {
                (0, height - 1),
                (height - 1, 0),
            }
            on_rows = (position[0], goal[0]) in opposite
            on_cols = (position[1], goal[1]) in {(0, width - 1), (width - 1, 0)}
            assert on_rows or on_cols
    # The mazes differ.
    assert len({grid.tobytes() for grid in grids}) == len(grids)


@rollout_cases
def test_oracle_reaches_the_maximum_return(case):
    env, _ = case.made
    grids, starts = _first_mazes(case)
    assert len({grid.tobytes() for grid in grids}) == NUM_ENVS  # plans are found
    returns, lengths = _first_episode(case.oracle_rollout)
    for grid, start, ret, length in zip(grids, starts, returns, lengths):
        dist = _distances(grid, start)
        if issubclass(case.env, LabyrinthEscape):
            # The shortest path, d steps: 1 - d / L.
            d = dist[grid == GOAL][0]
            assert length == d
            assert ret == pytest.approx(1 - d / LENGTH, abs=1e-5)
        else:
            # F new squares and F - D steps back: 1 - (F - D) / L.
            free, farthest = env.num_free, dist.max()
            assert length == 2 * free - farthest
            assert ret == pytest.approx(1 - (free - farthest) / LENGTH, abs=1e-5)
    traj = case.oracle_rollout
    ended = np.asarray(traj["terminated"])[np.arange(NUM_ENVS), lengths - 1]
    assert ended.all() and not np.asarray(traj["truncated"])[:, : lengths.min()].any()


@rollout_cases
def test_random_policy_returns(case):
    env, _ = case.made
    # Returns within [-1023 / 1024, 1], to float32 sums' error.
    returns, lengths = contract.check_returns_within(
        case, case.random, -MAX_STEPS / LENGTH, atol=1e-4, min_count=NUM_ENVS
    )
    if issubclass(case.env, LabyrinthEscape):
        # A random walk often misses the exit within 1023 steps (its expected
        # hitting time along a maze's solution is in the thousands of steps), so
        # many episodes are truncated with return -1023 / 1024 (as POPGym's), and
        # the rest escape with a return below 1.
        escaped = lengths < MAX_STEPS
        np.testing.assert_allclose(returns[~escaped], -MAX_STEPS / LENGTH, atol=1e-4)
        np.testing.assert_allclose(
            returns[escaped], 1 - lengths[escaped] / LENGTH, atol=1e-4
        )
        assert escaped.mean() <= 0.5
    else:
        # A random walk covers part of the maze; a return is (new squares) / F
        # - (other steps) / L. Never finishing, it is truncated after 1023
        # steps, its return between -1023 / 1024 and 1 - (1023 - F) / 1024 (all
        # F squares found).
        assert (lengths == MAX_STEPS).mean() >= 0.5
        high = 1 - (MAX_STEPS - env.num_free) / LENGTH
        assert -MAX_STEPS / LENGTH < returns.mean() < high


@rollout_cases
def test_moves_rewards_and_observations(case):
    """Every step of the random rollout against the rules, by hand."""
    env, _ = case.made
    traj = case.random
    state = traj["state"]
    grid = np.asarray(state.grid)
    pos = np.asarray(state.position)
    action = np.asarray(traj["action"])
    e, t = np.indices(action.shape)
    height, width = env.grid_shape
    # The observation: the 3x3 squares around the agent as POPGym crops them (the
    # rows `[max(i - 1, 0), i + 2)` of the agent's row `i`, and likewise the
    # columns, then walls to fill 3x3), then the last move.
    padded = np.pad(grid, [(0, 0), (0, 0), (0, 2), (0, 2)], constant_values=WALL)
    top, left = np.maximum(pos[..., 0] - 1, 0), np.maximum(pos[..., 1] - 1, 0)
    view = np.stack(
        [
            np.where(
                (top + dr <= pos[..., 0] + 1) & (left + dc <= pos[..., 1] + 1),
                padded[e, t, top + dr, left + dc],
                WALL,
            )
            for dr in range(3)
            for dc in range(3)
        ],
        axis=-1,
    )
    last = np.where(np.asarray(state.time) == 0, 4, np.roll(action, 1, axis=1))
    obs = np.concatenate(
        [np.eye(4)[view].reshape(action.shape + (36,)), np.eye(5)[last]], axis=-1
    )
    np.testing.assert_array_equal(traj["obs"], obs)
    # The move: one square, unless a wall or the grid's edge is in the way.
    step = np.array(MOVES)[action]
    target = np.clip(pos + step, 0, [height - 1, width - 1])
    blocked = grid[e, t, target[..., 0], target[..., 1]] == WALL
    moved = np.where(blocked[..., None], pos, target)
    done = contract.done(traj)
    np.testing.assert_array_equal(
        moved[:, :-1][~done[:, :-1]], pos[:, 1:][~done[:, :-1]]
    )
    square = grid[e, t, moved[..., 0], moved[..., 1]]
    if issubclass(case.env, LabyrinthEscape):
        expected = (square == GOAL) - 1 / LENGTH
        np.testing.assert_array_equal(traj["terminated"], square == GOAL)
    else:
        new = ~np.asarray(state.explored)[e, t, moved[..., 0], moved[..., 1]]
        expected = np.where(new, 1 / env.num_free, -1 / LENGTH)
    np.testing.assert_allclose(traj["reward"], expected, rtol=1e-6)
    # Truncated at the time limit, unless the task ended on that step.
    time = np.asarray(state.time) + 1
    truncated = (time == MAX_STEPS) & ~np.asarray(traj["terminated"])
    np.testing.assert_array_equal(traj["truncated"], truncated)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(maze_dims=(10, 9)), "maze_dims must be even and at least 2"),
        (dict(maze_dims=(0, 10)), "maze_dims must be even and at least 2"),
        (dict(maze_dims=(10,)), "maze_dims must be two ints"),
        (dict(maze_dims=(10, True)), "maze_dims must be an int, got True"),
        (dict(episode_length=1), "episode_length must be at least 2"),
    ],
)
@pytest.mark.parametrize("family", [LabyrinthEscape, LabyrinthExplore])
def test_rejects_bad_parameters(family, kwargs, match):
    with pytest.raises(ValueError, match=match):
        family(**kwargs)


@pytest.mark.parametrize("family", [LabyrinthEscape, LabyrinthExplore])
def test_centred_view_option(family):
    """`centred_view=True` centres the view on the agent everywhere (squares
    beyond the grid are walls); by default it is POPGym's, which differs only on
    the first row and column."""
    default, centred = family(maze_dims=(4, 4)), family(centred_view=True)
    assert centred.centred_view and not default.centred_view
    centred = family(maze_dims=(4, 4), centred_view=True)
    # Square types 0..3 in a pattern that tells every square apart by position.
    grid = (np.arange(25).reshape(5, 5) * 7 % 4).astype(np.int8)
    padded = np.pad(grid, 1, constant_values=WALL)
    for row in range(5):
        for col in range(5):
            state = default._maze(jax.random.key(0), open_end=False)
            state = eqx.tree_at(
                lambda s: (s.grid, s.position),
                state,
                (jnp.asarray(grid), jnp.array([row, col], dtype=jnp.int32)),
            )
            around = padded[row : row + 3, col : col + 3]
            crop = np.pad(
                grid[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2],
                [(0, 3), (0, 3)],
                constant_values=WALL,
            )[:3, :3]
            for env, view in [(centred, around), (default, crop)]:
                obs = np.asarray(env._observation(state))
                np.testing.assert_array_equal(obs[:36], np.eye(4)[view.ravel()].ravel())
            assert (row == 0 or col == 0) == (not np.array_equal(around, crop))


@pytest.mark.parametrize("family", [LabyrinthEscape, LabyrinthExplore])
def test_rejects_a_centred_view_that_is_not_a_bool(family):
    # A TypeError naming the argument (ours, or the type checker's under test).
    with pytest.raises(TypeError, match="centred_view"):
        family(centred_view=1)
