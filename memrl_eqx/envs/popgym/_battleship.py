from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._validation import _as_int


class BattleshipState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.Battleship`][] episode: the hidden
    fleet and the shots fired at it (POPGym's `Battleship.get_state` gives the same
    boards).

    **Fields:**

    - `ships`: the tiles the ships cover. Shape `(board_size, board_size)`, dtype
        bool, with `sum(ship_sizes)` entries set.
    - `fired`: the tiles shot at so far. Shape `(board_size, board_size)`, dtype
        bool.
    - `hits`: the number of ship tiles hit so far (each counted once). Shape `()`,
        dtype int32.
    - `time`: the number of shots fired. Shape `()`, dtype int32.
    """

    ships: Bool[Array, "n n"]
    fired: Bool[Array, "n n"]
    hits: Int[Array, ""]
    time: Int[Array, ""]


def _place_ship(
    uniform: Float[Array, ""], occupied: Bool[Array, "n n"], size: Int[Array, ""]
) -> Bool[Array, "n n"]:
    """Adds a ship of `size` tiles to `occupied`, evenly among the horizontal and
    vertical placements inside the board that overlap no ship: `uniform`, in
    `[0, 1)`, picks the placement.

    A placement is named by its first (top or left) tile and its direction. All
    `2 n^2` are scored at once (window sums of the occupied tiles, out-of-board
    ones excluded), so the cost is fixed. The caller guarantees that some placement
    is free."""
    n = occupied.shape[0]
    start = jnp.arange(n, dtype=jnp.int32)
    end = jnp.minimum(start + size, n)
    fits = start + size <= n
    taken = occupied.astype(jnp.int32)
    across = jnp.pad(jnp.cumsum(taken, axis=1), ((0, 0), (1, 0)))  # (n, n + 1)
    down = jnp.pad(jnp.cumsum(taken, axis=0), ((1, 0), (0, 0)))  # (n + 1, n)
    free_across = (across[:, end] == across[:, start]) & fits[None, :]
    free_down = (down[end, :] == down[start, :]) & fits[:, None]
    free = jnp.concatenate([free_across.ravel(), free_down.ravel()])
    # The `k`-th free placement for `k` uniform in `0..count - 1`.
    rank = jnp.cumsum(free, dtype=jnp.int32)
    count = rank[-1]
    k = jnp.floor(uniform * count.astype(jnp.float32)).astype(jnp.int32)
    choice = jnp.sum(rank <= jnp.minimum(k, count - 1), dtype=jnp.int32)
    is_down = choice >= n * n
    row, col = (choice % (n * n)) // n, choice % n
    rows, cols = start[:, None], start[None, :]
    horizontal = (rows == row) & (cols >= col) & (cols < col + size)
    vertical = (cols == col) & (rows >= row) & (rows < row + size)
    return occupied | jnp.where(is_down, vertical, horizontal)


class Battleship(environment.Environment[BattleshipState, Any]):
    """POPGym's Battleship: sink a hidden fleet from hit-or-miss reports.

    Ships of `ship_sizes` tiles are placed one after the other, each uniformly
    among the horizontal and vertical placements on a `board_size x board_size`
    board that overlap no earlier ship (the distribution of POPGym's rejection
    sampling, without its unbounded loop). Each step the agent fires at a tile
    (the action, `row * board_size + col`, in `Discrete(board_size ** 2)`) and
    observes whether it hit and where it fired. A shot counts as a hit only on a
    ship tile not fired at before, so the agent must remember which tiles it has
    tried and where the ships it found continue.

    The observation is `Float[Array, "2 + 2 * board_size"]`, the concatenation of
    the outcome one-hot (`[1, 0]` a miss, `[0, 1]` a hit), the row one-hot and the
    column one-hot of the shot. At reset nothing has been fired and the
    observation is all zeros.

    With `N = board_size ** 2` tiles and `S = sum(ship_sizes)` ship tiles, a hit is
    rewarded `+1 / S` and any other shot `-1 / (N - S)`, as in POPGym: sinking the
    fleet without a miss returns `1`, and firing at every tile once returns `0`.
    Hitting every ship tile ends the episode (a termination); it is truncated after
    `N` shots. The return lies in `[-N / (N - S), 1]`: POPGym's scaling lets an
    episode of `N` misses (possible only by firing at tiles twice) fall below `-1`,
    which is kept here.

    Differences from POPGym's `Battleship`: POPGym appends the previous action to
    its observation through a wrapper (here the coordinates are part of the
    observation, zero at reset), and places ships by rejection sampling (here by
    sampling among the free placements, which gives the same distribution at a
    fixed cost).

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the time
    limit `N` for algorithms that want it, but the limit is fixed by the board.
    """

    board_size: int
    ship_sizes: tuple[int, ...]

    def __init__(
        self, *, board_size: int = 10, ship_sizes: Sequence[int] = (2, 3, 3, 4)
    ):
        """**Arguments:**

        - `board_size`: the width and height of the board (POPGym's
            Easy/Medium/Hard use 8/10/12).
        - `ship_sizes`: the lengths of the ships, placed in this order (POPGym
            uses `(2, 3, 3, 4)` in every preset). Each must be in
            `1..board_size`, and for each ship the placements the earlier ships
            can block must be fewer than all placements, `size * (sum of the
            earlier sizes) < board_size * (board_size - size + 1)`, which
            guarantees that it can always be placed.
        """
        super().__init__()
        board_size = _as_int("board_size", board_size)
        if board_size < 1:
            raise ValueError(f"board_size must be at least 1, got {board_size}.")
        if isinstance(ship_sizes, (str, bytes)) or not isinstance(ship_sizes, Sequence):
            raise ValueError(
                f"ship_sizes must be a sequence of ints, got {ship_sizes!r}."
            )
        ship_sizes = tuple(_as_int("ship_sizes", size) for size in ship_sizes)
        if not ship_sizes:
            raise ValueError("ship_sizes must name at least one ship, got ().")
        placed = 0
        for size in ship_sizes:
            if not 1 <= size <= board_size:
                raise ValueError(
                    f"ship_sizes must each be in 1..board_size = 1..{board_size}, "
                    f"got {size} in {ship_sizes}."
                )
            # A tile blocks at most `size` placements across and `size` down, out
            # of `2 * board_size * (board_size - size + 1)`.
            if size * placed >= board_size * (board_size - size + 1):
                raise ValueError(
                    f"ship_sizes {ship_sizes} may not fit a board of size "
                    f"{board_size}: a ship of size {size} after {placed} tiles of "
                    "ships needs size * placed < board_size * (board_size - size + "
                    f"1), got {size * placed} >= "
                    f"{board_size * (board_size - size + 1)}."
                )
            placed += size
        if placed >= board_size**2:
            raise ValueError(
                f"ship_sizes must leave a free tile: sum(ship_sizes) = {placed} >= "
                f"board_size ** 2 = {board_size**2}."
            )
        self.board_size = board_size
        self.ship_sizes = ship_sizes

    @property
    def num_tiles(self) -> int:
        """The number of tiles, `board_size ** 2`, which is also the time limit."""
        return self.board_size**2

    @property
    def num_ship_tiles(self) -> int:
        """The number of tiles the ships cover, `sum(ship_sizes)`."""
        return sum(self.ship_sizes)

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.num_tiles)

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, " obs"], BattleshipState]:
        """Places the fleet, ship by ship."""
        del params
        n = self.board_size
        uniforms = jax.random.uniform(key, (len(self.ship_sizes),))
        sizes = jnp.array(self.ship_sizes, dtype=jnp.int32)

        def place(ships, uniform_and_size):
            uniform, size = uniform_and_size
            return _place_ship(uniform, ships, size), None

        ships, _ = jax.lax.scan(place, jnp.zeros((n, n), dtype=bool), (uniforms, sizes))
        state = BattleshipState(
            ships=ships,
            fired=jnp.zeros((n, n), dtype=bool),
            hits=jnp.array(0, dtype=jnp.int32),
            time=jnp.array(0, dtype=jnp.int32),
        )
        return jnp.zeros((2 + 2 * n,), dtype=jnp.float32), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: BattleshipState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, " obs"],
        BattleshipState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Fires at the tile `action = row * board_size + col`."""
        del key, params
        n = self.board_size
        action = jnp.asarray(action).astype(jnp.int32)
        row, col = action // n, action % n
        hit = state.ships[row, col] & ~state.fired[row, col]
        reward = jnp.where(
            hit,
            1.0 / self.num_ship_tiles,
            -1.0 / (self.num_tiles - self.num_ship_tiles),
        ).astype(jnp.float32)
        state = BattleshipState(
            ships=state.ships,
            fired=state.fired.at[row, col].set(True),
            hits=state.hits + hit.astype(jnp.int32),
            time=state.time + 1,
        )
        obs = jnp.concatenate(
            [
                jax.nn.one_hot(hit.astype(jnp.int32), 2, dtype=jnp.float32),
                jax.nn.one_hot(row, n, dtype=jnp.float32),
                jax.nn.one_hot(col, n, dtype=jnp.float32),
            ]
        )
        return obs, state, reward, self.is_terminated(state, None), {}

    def is_terminated(self, state: BattleshipState, params: Any) -> Bool[Array, ""]:
        """Whether every ship tile has been hit."""
        del params
        return state.hits >= self.num_ship_tiles

    def is_truncated(self, state: BattleshipState, params: Any) -> Bool[Array, ""]:
        """Whether `board_size ** 2` shots have been fired and the fleet is not
        sunk."""
        del params
        return (state.time >= self.num_tiles) & ~self.is_terminated(state, None)

    @property
    def num_actions(self) -> int:
        return self.num_tiles

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(board_size ** 2)`: the tile `row * board_size + col`."""
        return spaces.Discrete(self.num_tiles)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (2 + 2 * board_size,), float32)`: the shot's outcome, row and
        column, each one-hot."""
        return spaces.Box(0.0, 1.0, (2 + 2 * self.board_size,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        shape = (self.board_size, self.board_size)
        return spaces.Dict(
            {
                "ships": spaces.Box(0, 1, shape, jnp.bool_),
                "fired": spaces.Box(0, 1, shape, jnp.bool_),
                "hits": spaces.Discrete(self.num_ship_tiles + 1),
                "time": spaces.Discrete(self.num_tiles + 1),
            }
        )


class BattleshipEasy(Battleship):
    """POPGym's Battleship Easy: ships of 2, 3, 3 and 4 tiles on an 8x8 board (at
    most 64 shots)."""

    def __init__(self):
        super().__init__(board_size=8, ship_sizes=(2, 3, 3, 4))


class BattleshipMedium(Battleship):
    """POPGym's Battleship Medium: ships of 2, 3, 3 and 4 tiles on a 10x10 board (at
    most 100 shots)."""

    def __init__(self):
        super().__init__(board_size=10, ship_sizes=(2, 3, 3, 4))


class BattleshipHard(Battleship):
    """POPGym's Battleship Hard: ships of 2, 3, 3 and 4 tiles on a 12x12 board (at
    most 144 shots)."""

    def __init__(self):
        super().__init__(board_size=12, ship_sizes=(2, 3, 3, 4))
