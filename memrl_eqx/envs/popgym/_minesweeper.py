from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._validation import _as_int


class MineSweeperState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.MineSweeper`][] episode: the hidden
    board and what has been uncovered of it.

    **Fields:**

    - `mines`: where the mines are. Shape `(rows, cols)`, dtype bool, with exactly
        `num_mines` entries set.
    - `counts`: for every tile, the number of mines in the 3x3 block centred on
        it (for a free tile, its number of neighbouring mines). Shape
        `(rows, cols)`, dtype int32, in `0..9`.
    - `uncovered`: the free tiles clicked so far. Shape `(rows, cols)`, dtype bool.
    - `exploded`: whether a mine has been clicked. Shape `()`, dtype bool.
    - `time`: the number of clicks made. Shape `()`, dtype int32.
    """

    mines: Bool[Array, "rows cols"]
    counts: Int[Array, "rows cols"]
    uncovered: Bool[Array, "rows cols"]
    exploded: Bool[Array, ""]
    time: Int[Array, ""]


def _mine_counts(mines: Bool[Array, "rows cols"]) -> Int[Array, "rows cols"]:
    """The number of mines in the 3x3 block around every tile (zero beyond the
    board)."""
    rows, cols = mines.shape
    padded = jnp.pad(mines.astype(jnp.int32), 1)
    total = jnp.zeros((rows, cols), dtype=jnp.int32)
    for dr in range(3):
        for dc in range(3):
            total = total + padded[dr : dr + rows, dc : dc + cols]
    return total


class MineSweeper(environment.Environment[MineSweeperState, Any]):
    """POPGym's MineSweeper: clear a hidden minefield from what each click reveals.

    `num_mines` mines are placed uniformly at random among the `rows * cols` tiles
    of a board the agent never sees. Each step the agent clicks a tile (the
    action, `row * cols + col`, in `Discrete(rows * cols)`) and observes the tile's
    coordinates and its number, the count of mines in the 3x3 block centred on it
    (the tile itself included, so a free tile shows its neighbouring mines). To
    clear the board without clicking a tile twice, the agent must remember which
    tiles it has clicked and what they showed, and infer the mines from the numbers.

    The observation is `Float[Array, "num_counts + rows + cols"]`, the
    concatenation of the number one-hot (`num_counts = min(num_mines + 1, 10)`
    values), the clicked row one-hot and the clicked column one-hot. At reset
    nothing has been clicked and the observation is all zeros.

    With `L = rows * cols - num_mines` free tiles, a click is rewarded:

    - `+1 / L` on a free tile not clicked before, which it uncovers;
    - `-0.5 / (L - 2)` on a tile already uncovered;
    - `-0.5 - 1 / L` on a mine, which ends the episode (a termination).

    Uncovering every free tile ends the episode too (a termination), with return
    `1`. The episode is truncated after `L` clicks. Within `L` clicks the return
    lies in `[-1, 1]`: the lowest, `-1`, is a first click on a free tile, `L - 2`
    repeated clicks and a mine.

    The rewards and the time limit are POPGym 1.0.7's `MineSweeper`'s, which also
    truncates an episode after `L` clicks (its step counter is incremented before
    the limit is checked). The observation differs in form only: POPGym's is the
    number alone, and it appends the previous action (the clicked tile) through a
    wrapper; here the clicked row and column are part of the observation, zero at
    reset.

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the time
    limit `L` for algorithms that want it, but the limit is fixed by the board.

    **Arguments:**

    - `rows`, `cols`: the board's size (POPGym's Easy/Medium/Hard use 4x4, 6x6
        and 8x8).
    - `num_mines`: the number of mines (POPGym's Easy/Medium/Hard use 2/6/10).
        Must be at least 1 and leave at least 3 free tiles.

    All keyword only; the defaults are `rows=4`, `cols=4`, `num_mines=2`.
    """

    rows: int
    cols: int
    num_mines: int

    def __init__(self, *, rows: int = 4, cols: int = 4, num_mines: int = 2):
        super().__init__()
        rows = _as_int("rows", rows)
        cols = _as_int("cols", cols)
        num_mines = _as_int("num_mines", num_mines)
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}.")
        if cols < 1:
            raise ValueError(f"cols must be at least 1, got {cols}.")
        if num_mines < 1:
            raise ValueError(f"num_mines must be at least 1, got {num_mines}.")
        if rows * cols - num_mines < 3:
            raise ValueError(
                "num_mines must leave at least 3 free tiles, i.e. num_mines <= "
                f"rows * cols - 3 = {rows * cols - 3}, got num_mines={num_mines}."
            )
        self.rows = rows
        self.cols = cols
        self.num_mines = num_mines

    @property
    def num_free(self) -> int:
        """The number of free tiles, `rows * cols - num_mines`, which is also the
        time limit."""
        return self.rows * self.cols - self.num_mines

    @property
    def num_counts(self) -> int:
        """The number of values a tile's mine count can take,
        `min(num_mines + 1, 10)`."""
        return min(self.num_mines + 1, 10)

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.num_free)

    def _observation(
        self, count: Int[Array, ""], row: Int[Array, ""], col: Int[Array, ""]
    ) -> Float[Array, " obs"]:
        return jnp.concatenate(
            [
                jax.nn.one_hot(count, self.num_counts, dtype=jnp.float32),
                jax.nn.one_hot(row, self.rows, dtype=jnp.float32),
                jax.nn.one_hot(col, self.cols, dtype=jnp.float32),
            ]
        )

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, " obs"], MineSweeperState]:
        """Lays the mines on a covered board."""
        del params
        size = self.rows * self.cols
        tiles = jax.random.permutation(key, size)[: self.num_mines]
        mines = jnp.zeros((size,), dtype=bool).at[tiles].set(True)
        mines = mines.reshape(self.rows, self.cols)
        state = MineSweeperState(
            mines=mines,
            counts=_mine_counts(mines),
            uncovered=jnp.zeros((self.rows, self.cols), dtype=bool),
            exploded=jnp.array(False),
            time=jnp.array(0, dtype=jnp.int32),
        )
        obs = jnp.zeros((self.num_counts + self.rows + self.cols,), jnp.float32)
        return obs, state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: MineSweeperState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, " obs"],
        MineSweeperState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Clicks the tile `action = row * cols + col`."""
        del key, params
        action = jnp.asarray(action).astype(jnp.int32)
        row, col = action // self.cols, action % self.cols
        mine = state.mines[row, col]
        seen = state.uncovered[row, col]
        free = self.num_free
        reward = jnp.where(
            mine,
            -0.5 - 1.0 / free,
            jnp.where(seen, -0.5 / (free - 2), 1.0 / free),
        ).astype(jnp.float32)
        state = MineSweeperState(
            mines=state.mines,
            counts=state.counts,
            uncovered=state.uncovered.at[row, col].set(~mine),
            exploded=mine,
            time=state.time + 1,
        )
        obs = self._observation(state.counts[row, col], row, col)
        return obs, state, reward, self.is_terminated(state, None), {}

    def is_terminated(self, state: MineSweeperState, params: Any) -> Bool[Array, ""]:
        """Whether a mine has been clicked or every free tile uncovered."""
        del params
        cleared = jnp.sum(state.uncovered, dtype=jnp.int32) >= self.num_free
        return state.exploded | cleared

    def is_truncated(self, state: MineSweeperState, params: Any) -> Bool[Array, ""]:
        """Whether `L` clicks have been made and the task is not over."""
        del params
        over = self.is_terminated(state, None)
        return (state.time >= self.num_free) & ~over

    @property
    def num_actions(self) -> int:
        return self.rows * self.cols

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(rows * cols)`: the tile `row * cols + col`."""
        return spaces.Discrete(self.rows * self.cols)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (num_counts + rows + cols,), float32)`: the clicked tile's
        number, row and column, each one-hot."""
        size = self.num_counts + self.rows + self.cols
        return spaces.Box(0.0, 1.0, (size,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        shape = (self.rows, self.cols)
        return spaces.Dict(
            {
                "mines": spaces.Box(0, 1, shape, jnp.bool_),
                "counts": spaces.Box(0, 9, shape, jnp.int32),
                "uncovered": spaces.Box(0, 1, shape, jnp.bool_),
                "exploded": spaces.Discrete(2),
                "time": spaces.Discrete(self.num_free + 1),
            }
        )


class MineSweeperEasy(MineSweeper):
    """POPGym's MineSweeper Easy: a 4x4 board with 2 mines (at most 14 clicks)."""

    def __init__(self):
        super().__init__(rows=4, cols=4, num_mines=2)


class MineSweeperMedium(MineSweeper):
    """POPGym's MineSweeper Medium: a 6x6 board with 6 mines (at most 30 clicks)."""

    def __init__(self):
        super().__init__(rows=6, cols=6, num_mines=6)


class MineSweeperHard(MineSweeper):
    """POPGym's MineSweeper Hard: an 8x8 board with 10 mines (at most 54 clicks)."""

    def __init__(self):
        super().__init__(rows=8, cols=8, num_mines=10)
