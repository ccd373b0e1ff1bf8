from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._validation import _as_int


# Square types on a maze grid (POPGym's `Cell` values; its `HIDDEN` never reaches
# an observation).
FREE, WALL, START, GOAL = 0, 1, 2, 3
_NUM_TYPES = 4
# Moves (POPGym's `Actions`): left, right, up, down; `4` means "none yet".
_MOVES = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]], dtype=np.int32)
_NUM_MOVES = 4


def _pick(uniform: Float[Array, ""], mask: Bool[Array, " n"]) -> Int[Array, ""]:
    """The index of the `k`-th set entry of `mask`, `k = floor(uniform * count)`:
    evenly among the set entries for `uniform` uniform in `[0, 1)` (`0` if none
    is set)."""
    rank = jnp.cumsum(mask, dtype=jnp.int32)
    count = rank[-1]
    k = jnp.floor(uniform * count.astype(jnp.float32)).astype(jnp.int32)
    k = jnp.clip(k, 0, jnp.maximum(count - 1, 0))
    return jnp.minimum(jnp.sum(rank <= k, dtype=jnp.int32), mask.shape[0] - 1)


def _neighbours(rows: int, cols: int) -> np.ndarray:
    """The cell to the left, right, above and below every cell of a `rows x cols`
    cell grid, by flat index; `rows * cols` where there is none."""
    size = rows * cols
    r, c = np.divmod(np.arange(size), cols)
    table = np.full((size, 4), size, dtype=np.int32)
    for move, (dr, dc) in enumerate(_MOVES):
        nr, nc = r + dr, c + dc
        inside = (0 <= nr) & (nr < rows) & (0 <= nc) & (nc < cols)
        table[inside, move] = (nr * cols + nc)[inside]
    return table


def hunt_and_kill(
    key: PRNGKeyArray, rows: int, cols: int
) -> tuple[Bool[Array, "height width"], Float[Array, "3"]]:
    """A random perfect maze on a `rows x cols` grid of cells, by Hunt-and-Kill.

    Returns the maze as POPGym draws it: a `(2 rows + 1, 2 cols + 1)` grid of
    squares, `True` for walls, whose cells are the squares at odd coordinates and
    whose passages open the walls between them; every cell is reachable from every
    other by exactly one path. Also returns the random numbers left unused (for the
    entrances), so that generation takes one call to the random number generator.

    The algorithm is mazelib's `HuntAndKill` with its random hunt, which POPGym
    uses: a random walk carves into unvisited cells from a random first cell; when
    it is stuck, the walk restarts from a uniformly random visited cell that still
    has an unvisited neighbour. Each step adds one cell, so the loop runs exactly
    `rows * cols - 1` steps of fixed cost. (mazelib finds the restart cell by
    drawing random cells and gives up after a fixed number of draws, which can
    leave a cell walled in; this version always completes the maze.)
    """
    size = rows * cols
    table = jnp.asarray(_neighbours(rows, cols))
    uniforms = jax.random.uniform(key, (2 * size + 2,))
    first = jnp.minimum(
        jnp.floor(uniforms[0] * size).astype(jnp.int32), jnp.int32(size - 1)
    )
    # Arrays over the cells have a last entry for "no cell", which absorbs writes.
    visited = jnp.zeros((size + 1,), dtype=bool).at[first].set(True).at[size].set(True)
    # The number of unvisited neighbours of every cell.
    unvisited = jnp.sum(table < size, axis=1, dtype=jnp.int32)
    unvisited = jnp.append(unvisited, jnp.int32(0)).at[table[first]].add(-1)
    no_walls = jnp.zeros((size + 1,), dtype=bool)

    def carve(step, carry):
        visited, unvisited, current, east, south = carry
        u_hunt, u_move = uniforms[2 * step + 1], uniforms[2 * step + 2]
        hunted = _pick(u_hunt, visited[:size] & (unvisited[:size] > 0))
        cell = jnp.where(unvisited[current] > 0, current, hunted)
        around = table[cell]
        move = _pick(u_move, ~visited[around])
        new = around[move]
        # Open the wall between `cell` and `new`, stored with the cell on its left
        # (for `east`) or above it (for `south`).
        east = east.at[jnp.where(move == 1, cell, jnp.where(move == 0, new, size))]
        east = east.set(True)
        south = south.at[jnp.where(move == 3, cell, jnp.where(move == 2, new, size))]
        south = south.set(True)
        visited = visited.at[new].set(True)
        unvisited = unvisited.at[table[new]].add(-1)
        return visited, unvisited, new, east, south

    carry = (visited, unvisited, first, no_walls, no_walls)
    _, _, _, east, south = jax.lax.fori_loop(0, size - 1, carve, carry)
    east = east[:size].reshape(rows, cols)
    south = south[:size].reshape(rows, cols)
    walls = jnp.ones((2 * rows + 1, 2 * cols + 1), dtype=bool)
    walls = walls.at[1::2, 1::2].set(False)
    walls = walls.at[1::2, 2::2].set(~east)  # the last column's east is the border
    walls = walls.at[2::2, 1::2].set(~south)
    return walls, uniforms[2 * size - 1 :]


def _entrances(
    uniforms: Float[Array, " 2"], side: Float[Array, ""], rows: int, cols: int
) -> tuple[Int[Array, "2"], Int[Array, "2"]]:
    """A start and an end on opposite outer walls, each next to a cell (mazelib's
    outer entrances): the start's side is uniform among the four, and along its
    wall each entrance is uniform among the cells."""
    height, width = 2 * rows + 1, 2 * cols + 1
    side = jnp.minimum(jnp.floor(side * 4).astype(jnp.int32), 3)
    row_at = 1 + 2 * jnp.minimum(jnp.floor(uniforms * rows).astype(jnp.int32), rows - 1)
    col_at = 1 + 2 * jnp.minimum(jnp.floor(uniforms * cols).astype(jnp.int32), cols - 1)
    last_row, last_col = jnp.int32(height - 1), jnp.int32(width - 1)
    zero = jnp.int32(0)
    # Sides: 0 north, 1 south, 2 west, 3 east; the end is on the opposite one.
    start_row = jnp.stack([zero, last_row, row_at[0], row_at[0]])[side]
    start_col = jnp.stack([col_at[0], col_at[0], zero, last_col])[side]
    end_row = jnp.stack([last_row, zero, row_at[1], row_at[1]])[side]
    end_col = jnp.stack([col_at[1], col_at[1], last_col, zero])[side]
    return jnp.stack([start_row, start_col]), jnp.stack([end_row, end_col])


class LabyrinthState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.LabyrinthEscape`][] or
    [`memrl_eqx.envs.popgym.LabyrinthExplore`][] episode: the maze and the agent's
    walk through it (POPGym's `MazeEnv` state).

    **Fields:**

    - `grid`: the maze, one square type per square: `0` free, `1` wall, `2` the
        start (an opening in the outer wall), `3` the goal (the exit, in
        `LabyrinthEscape` only). Shape `(height, width)`, dtype int8, where
        `(height, width) = (maze_dims[0] + 1, maze_dims[1] + 1)`.
    - `position`: the agent's square, `(row, col)`. Shape `(2,)`, dtype int32.
    - `explored`: the squares the agent has stood on. Shape `(height, width)`,
        dtype bool.
    - `last_action`: the previous move, `4` at reset. Shape `()`, dtype int32.
    - `time`: the number of steps taken. Shape `()`, dtype int32.
    """

    grid: Int[Array, "height width"]
    position: Int[Array, "2"]
    explored: Bool[Array, "height width"]
    last_action: Int[Array, ""]
    time: Int[Array, ""]


class _Labyrinth(environment.Environment[LabyrinthState, Any]):
    """What POPGym's maze tasks share: the maze, the moves and the observation."""

    maze_dims: tuple[int, int]
    episode_length: int
    centred_view: bool

    def __init__(
        self,
        *,
        maze_dims: Sequence[int] = (10, 10),
        episode_length: int = 1024,
        centred_view: bool = False,
    ):
        """**Arguments:**

        - `maze_dims`: the maze's `(height, width)` without its outer wall, both
            even and at least 2; the grid has one more square each way. POPGym's
            Easy/Medium/Hard use `(10, 10)`, `(14, 14)` and `(18, 18)`.
        - `episode_length`: POPGym's `episode_length` (1024 in every preset): each
            step costs `1 / episode_length`, and an episode is truncated after
            `episode_length - 1` steps (POPGym's count; `max_steps_in_episode`).
            At least 2.
        - `centred_view`: `False` (the default) observes the 3x3 view as POPGym
            does, cropped at the grid's top and left edges and padded with walls at
            the bottom and right, so that on the first row or column the agent is
            not at its centre; `True` always centres it on the agent (squares
            beyond the grid are walls), which **differs from POPGym 1.0.7** on the
            first row and column (the start, on the north or west wall).
        """
        super().__init__()
        if isinstance(maze_dims, (str, bytes)) or not isinstance(maze_dims, Sequence):
            raise ValueError(f"maze_dims must be two ints, got {maze_dims!r}.")
        if len(maze_dims) != 2:
            raise ValueError(f"maze_dims must be two ints, got {maze_dims!r}.")
        dims = tuple(_as_int("maze_dims", dim) for dim in maze_dims)
        if any(dim < 2 or dim % 2 for dim in dims):
            raise ValueError(
                f"maze_dims must be even and at least 2, got {tuple(maze_dims)}."
            )
        length = _as_int("episode_length", episode_length)
        if length < 2:
            raise ValueError(f"episode_length must be at least 2, got {length}.")
        if not isinstance(centred_view, bool):
            raise TypeError(f"centred_view must be a bool, got {centred_view!r}.")
        self.maze_dims = (dims[0], dims[1])
        self.episode_length = length
        self.centred_view = centred_view

    @property
    def max_steps_in_episode(self) -> int:
        """The time limit, `episode_length - 1` steps: POPGym truncates when its
        step counter reaches `episode_length - 1`."""
        return self.episode_length - 1

    @property
    def grid_shape(self) -> tuple[int, int]:
        """The maze grid's `(height, width)`, `maze_dims` plus one each."""
        return self.maze_dims[0] + 1, self.maze_dims[1] + 1

    @property
    def num_cells(self) -> int:
        """The number of maze cells (squares at odd coordinates),
        `maze_dims[0] * maze_dims[1] / 4`."""
        return (self.maze_dims[0] // 2) * (self.maze_dims[1] // 2)

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.max_steps_in_episode)

    def _maze(self, key: PRNGKeyArray, open_end: bool) -> LabyrinthState:
        rows, cols = self.maze_dims[0] // 2, self.maze_dims[1] // 2
        walls, uniforms = hunt_and_kill(key, rows, cols)
        start, end = _entrances(uniforms[:2], uniforms[2], rows, cols)
        grid = jnp.where(walls, jnp.int8(WALL), jnp.int8(FREE))
        if open_end:
            grid = grid.at[end[0], end[1]].set(jnp.int8(GOAL))
        grid = grid.at[start[0], start[1]].set(jnp.int8(START))
        explored = jnp.zeros(grid.shape, dtype=bool).at[start[0], start[1]].set(True)
        return LabyrinthState(
            grid=grid,
            position=start,
            explored=explored,
            last_action=jnp.array(_NUM_MOVES, dtype=jnp.int32),
            time=jnp.array(0, dtype=jnp.int32),
        )

    def _observation(self, state: LabyrinthState) -> Float[Array, "41"]:
        padded = jnp.pad(state.grid, 1, constant_values=jnp.int8(WALL))
        view = jax.lax.dynamic_slice(
            padded, (state.position[0], state.position[1]), (3, 3)
        )
        if not self.centred_view:
            # POPGym slices `[max(i - 1, 0), i + 2)` on each axis and pads the
            # slice with walls at its end: on the first row (column) the view
            # starts at the agent's row (column), and its last row (column) is a
            # wall.
            wall = jnp.int8(WALL)
            up = jnp.concatenate([view[1:], jnp.full((1, 3), wall)], axis=0)
            view = jnp.where(state.position[0] == 0, up, view)
            left = jnp.concatenate([view[:, 1:], jnp.full((3, 1), wall)], axis=1)
            view = jnp.where(state.position[1] == 0, left, view)
        return jnp.concatenate(
            [
                jax.nn.one_hot(view.ravel(), _NUM_TYPES, dtype=jnp.float32).ravel(),
                jax.nn.one_hot(state.last_action, _NUM_MOVES + 1, dtype=jnp.float32),
            ]
        )

    def _move(
        self, state: LabyrinthState, action: Integer[ArrayLike, ""]
    ) -> tuple[LabyrinthState, Bool[Array, ""]]:
        """Moves the agent one square unless a wall (or the grid's edge) is in the
        way; returns the new state and whether its square is newly explored."""
        action = jnp.asarray(action).astype(jnp.int32)
        height, width = self.grid_shape
        target = state.position + jnp.asarray(_MOVES)[action]
        target = jnp.clip(target, 0, jnp.array([height - 1, width - 1]))
        blocked = state.grid[target[0], target[1]] == WALL
        position = jnp.where(blocked, state.position, target)
        new = ~state.explored[position[0], position[1]]
        state = LabyrinthState(
            grid=state.grid,
            position=position,
            explored=state.explored.at[position[0], position[1]].set(True),
            last_action=action,
            time=state.time + 1,
        )
        return state, new

    def is_truncated(self, state: LabyrinthState, params: Any) -> Bool[Array, ""]:
        """Whether `max_steps_in_episode = episode_length - 1` steps have been taken
        and the task is not over."""
        del params
        over = self.is_terminated(state, None)
        return (state.time >= self.max_steps_in_episode) & ~over

    @property
    def num_actions(self) -> int:
        return _NUM_MOVES

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(4)`: move left, right, up or down."""
        return spaces.Discrete(_NUM_MOVES)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (41,), float32)`: the 3x3 squares around the agent, each
        one-hot over the 4 square types, then the previous move one-hot over 5."""
        return spaces.Box(0.0, 1.0, (9 * _NUM_TYPES + _NUM_MOVES + 1,), jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        height, width = self.grid_shape
        return spaces.Dict(
            {
                "grid": spaces.Box(0, _NUM_TYPES - 1, (height, width), jnp.int8),
                "position": spaces.Box(0, max(height, width) - 1, (2,), jnp.int32),
                "explored": spaces.Box(0, 1, (height, width), jnp.bool_),
                "last_action": spaces.Discrete(_NUM_MOVES + 1),
                "time": spaces.Discrete(self.episode_length),
            }
        )


_COMMON_DOC = """
    **The maze.** POPGym draws it with mazelib's Hunt-and-Kill: a perfect maze (one
    path between any two squares) on a grid of `(maze_dims[0] + 1) x (maze_dims[1]
    + 1)` squares whose cells are the squares at odd coordinates. The start is an
    opening in the outer wall next to a cell, on a uniformly random side; the agent
    starts there. See [`memrl_eqx.envs.popgym._labyrinth.hunt_and_kill`][] for the
    generator, which runs a fixed `maze_dims[0] * maze_dims[1] / 4 - 1` loop steps
    at every reset (so it dominates the cost of a step under auto-reset).

    **Observation.** `Float[Array, "41"]`: the 3x3 squares around the agent, row by
    row, each one-hot over `[free, wall, start, goal]`, then the previous move
    one-hot over `[left, right, up, down, none]` (`none` at reset). As POPGym's
    `MazeEnv` draws it, the view is the squares `[max(i - 1, 0), i + 2)` of the
    agent's row `i` and likewise of its column, padded with walls at the bottom and
    right to 3x3: centred on the agent, except on the first row or column (the
    start on the north or west wall), where it starts at the agent's row or column.
    `centred_view=True` always centres it (squares beyond the grid are walls),
    which differs from POPGym. (On a maze that is not square, which no preset is,
    POPGym 1.0.7 bounds the view's rows by the grid's width and its columns by its
    height, which blanks squares near the far edges; that slip is not reproduced.)
    **Actions.** `Discrete(4)`: left, right, up, down; a
    move into a wall leaves the agent in place.

    **Time limit.** As POPGym's, an episode is truncated after `episode_length - 1`
    steps (`max_steps_in_episode`, 1023 in every preset), each costing
    `1 / episode_length`.

    **Arguments:** `maze_dims`, `episode_length` and `centred_view`, keyword only
    (see `__init__`).
"""


class LabyrinthEscape(_Labyrinth):
    """POPGym's Labyrinth Escape: find the exit of a maze seen one square around.

    The exit (the goal) is an opening in the outer wall opposite the start. Each
    step costs `1 / L` for `L = episode_length`, and reaching the goal is worth
    `+1` and ends the episode (a termination); otherwise it is truncated after
    `L - 1` steps with return `-(L - 1) / L` (`-1023 / 1024` in the presets).
    Escaping after `t` steps returns `1 - t / L`, so the return lies in `(-1, 1)`,
    and the best is `1 - d / L` for `d` the length of the shortest path. The agent
    must remember where it has been to avoid searching dead ends twice.
    """

    __doc__ = (__doc__ or "") + _COMMON_DOC

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, "41"], LabyrinthState]:
        """Draws a maze with an exit and puts the agent at its start."""
        del params
        state = self._maze(key, open_end=True)
        return self._observation(state), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: LabyrinthState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "41"],
        LabyrinthState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Moves, pays for the step, and escapes on reaching the goal."""
        del key, params
        state, _ = self._move(state, action)
        escaped = self.is_terminated(state, None)
        reward = jnp.where(escaped, 1.0, 0.0) - 1.0 / self.episode_length
        return (
            self._observation(state),
            state,
            reward.astype(jnp.float32),
            escaped,
            {},
        )

    def is_terminated(self, state: LabyrinthState, params: Any) -> Bool[Array, ""]:
        """Whether the agent stands on the goal."""
        del params
        return state.grid[state.position[0], state.position[1]] == GOAL


class LabyrinthExplore(_Labyrinth):
    """POPGym's Labyrinth Explore: visit every square of a maze seen one square
    around.

    The maze has no exit. Stepping onto a square not visited before is rewarded
    `1 / F`, for `F = maze_dims[0] * maze_dims[1] / 2 - 1` the number of free
    squares other than the start (POPGym counts them at reset; in a complete maze
    there are always this many), and any other step costs `1 / L` for
    `L = episode_length` (a move into a wall too). Visiting every square ends the
    episode (a termination); it is truncated after `L - 1` steps. The return lies
    in `(-1, 1]`; in a maze where the farthest square is `D` steps from the start,
    the best is `1 - (F - D) / L` (every corridor but the last is walked back).
    The agent must remember which parts of the maze it has explored.
    """

    __doc__ = (__doc__ or "") + _COMMON_DOC

    @property
    def num_free(self) -> int:
        """`F`, the number of free squares other than the start: the cells and the
        passages between them, `2 * num_cells - 1`."""
        return 2 * self.num_cells - 1

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, "41"], LabyrinthState]:
        """Draws a maze and puts the agent at its start."""
        del params
        state = self._maze(key, open_end=False)
        return self._observation(state), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: LabyrinthState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "41"],
        LabyrinthState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Moves, rewarded for a new square and charged otherwise."""
        del key, params
        state, new = self._move(state, action)
        reward = jnp.where(new, 1.0 / self.num_free, -1.0 / self.episode_length).astype(
            jnp.float32
        )
        return (
            self._observation(state),
            state,
            reward,
            self.is_terminated(state, None),
            {},
        )

    def is_terminated(self, state: LabyrinthState, params: Any) -> Bool[Array, ""]:
        """Whether every square that is not a wall has been visited."""
        del params
        visited = jnp.sum(state.explored, dtype=jnp.int32)
        return visited >= self.num_free + 1


class LabyrinthEscapeEasy(LabyrinthEscape):
    """POPGym's Labyrinth Escape Easy: a 10x10 maze (11x11 squares), 1023 steps."""

    def __init__(self):
        super().__init__(maze_dims=(10, 10), episode_length=1024)


class LabyrinthEscapeMedium(LabyrinthEscape):
    """POPGym's Labyrinth Escape Medium: a 14x14 maze (15x15 squares), 1023
    steps."""

    def __init__(self):
        super().__init__(maze_dims=(14, 14), episode_length=1024)


class LabyrinthEscapeHard(LabyrinthEscape):
    """POPGym's Labyrinth Escape Hard: an 18x18 maze (19x19 squares), 1023 steps."""

    def __init__(self):
        super().__init__(maze_dims=(18, 18), episode_length=1024)


class LabyrinthExploreEasy(LabyrinthExplore):
    """POPGym's Labyrinth Explore Easy: a 10x10 maze (11x11 squares), 1023 steps."""

    def __init__(self):
        super().__init__(maze_dims=(10, 10), episode_length=1024)


class LabyrinthExploreMedium(LabyrinthExplore):
    """POPGym's Labyrinth Explore Medium: a 14x14 maze (15x15 squares), 1023
    steps."""

    def __init__(self):
        super().__init__(maze_dims=(14, 14), episode_length=1024)


class LabyrinthExploreHard(LabyrinthExplore):
    """POPGym's Labyrinth Explore Hard: an 18x18 maze (19x19 squares), 1023 steps."""

    def __init__(self):
        super().__init__(maze_dims=(18, 18), episode_length=1024)
