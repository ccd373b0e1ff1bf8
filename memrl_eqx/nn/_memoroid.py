"""`Memoroid`: a monoid cell run over a sequence by a resettable scan."""

from typing import Literal

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float

from .._custom_types import Element
from ._memoroid_cell import AbstractMemoroidCell
from ._misc import (
    check_sequence,
    chunk_size_for,
    merge_time,
    pad_time,
    remat_scan,
    reset_carry,
    split_time,
)
from ._sequence_model import AbstractSequenceModel


def _select(flag: Bool[Array, " time"], on_true: Element, on_false: Element):
    def leaf(t, f):
        return jnp.where(flag.reshape(flag.shape + (1,) * (t.ndim - 1)), t, f)

    return jtu.tree_map(leaf, on_true, on_false)


def _windows(
    history: Float[Array, "window_1 in_features"],
    xs: Float[Array, "time in_features"],
    resets: Bool[Array, " time"],
) -> tuple[
    Float[Array, "time window in_features"], Float[Array, "window_1 in_features"]
]:
    """Each step's window of the last `window` inputs, and the new history.

    Rows from before the latest episode start of a step are zeroed. The history
    belongs to the episode in progress when the chunk begins; the returned one
    is zero where it precedes the last step's episode.
    """
    k = history.shape[0] + 1
    full = jnp.concatenate([history, xs])
    episode = jnp.cumsum(resets.astype(jnp.int32))
    full_episode = jnp.concatenate([jnp.zeros((k - 1,), jnp.int32), episode])
    index = jnp.arange(xs.shape[0])[:, None] + jnp.arange(k)[None, :]
    same = full_episode[index] == episode[:, None]
    windows = jnp.where(same[..., None], full[index], 0.0)
    tail_same = full_episode[full.shape[0] - (k - 1) :] == episode[-1]
    new_history = jnp.where(tail_same[:, None], full[full.shape[0] - (k - 1) :], 0.0)
    return windows, new_history


_SCANS = ("auto", "associative", "chunked", "sequential")


def _concat(a: Element, b: Element) -> Element:
    return jtu.tree_map(lambda x, y: jnp.concatenate([x, y]), a, b)


class Memoroid(AbstractSequenceModel):
    """Runs a monoid cell over a sequence with a *resettable* scan.

    Each element carries a flag "a new episode starts inside me"; the resettable
    operator $(a, f_a) \\circ (b, f_b) = (b$ if $f_b$ else $a \\bullet b$,
    $f_a \\lor f_b)$ is associative, so resets cost nothing extra. The incoming
    carry is prepended as element 0 with its flag clear.

    How the operator is applied over time is a choice of `scan`; every choice
    gives the same result up to float rounding:

    - `"sequential"`: `jax.lax.scan`, one element per step, each step's output
      read inside the loop so no per-step aggregate is stored; $O(T)$ work.
      Beyond `chunk_size` steps (default: the power of two nearest
      $\\sqrt{T}$), every chunk is rematerialised in the backward pass, so the
      gradient keeps $O(T/C + C)$ aggregates instead of $T$.
    - `"associative"`: `jax.lax.associative_scan`, $O(\\log T)$ depth and
      $O(T \\log T)$ work; pays on parallel hardware (GPU, TPU).
    - `"chunked"`: chunks of `chunk_size` steps are folded sequentially, all
      chunks at once (vectorised); the chunk totals are folded in order and each
      chunk's prefix combined into its steps: $O(T)$ work in $O(T/C + C)$ depth.
    - `"auto"` (default): `"associative"` on GPU and TPU. On the CPU,
      `"chunked"` for more than one chunk and at most 512 steps (RL training
      windows: PPO's minibatches of 128-step trajectories train 1.6x faster
      than with the fold), else `"sequential"` (a single step when acting; long
      sequences, where the fold is up to 2.5x faster and its memory bounded).
      Measured in `benchmarks/RESULTS.md`.

    **Arguments:**

    - `cell`: the monoid cell ([`memrl_eqx.nn.AbstractMemoroidCell`][]), e.g. an
      [`memrl_eqx.nn.LRUCell`][]; the inputs are `(time, cell.in_features)`.
    - `scan`: one of the above (default `"auto"`).
    - `chunk_size`: the chunk length of the chunked scan and of the sequential
      scan's rematerialisation, a positive int (default None: the power of two
      nearest $\\sqrt{T}$).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import LRUCell, Memoroid

    cell = LRUCell(in_features=4, features=8, hidden_dim=16, key=jax.random.key(0))
    model = Memoroid(cell)
    xs = jax.random.normal(jax.random.key(1), (6, 4))
    resets = jnp.array([True, False, False, True, False, False])  # 2 episodes
    carry, ys = model(model.init_carry(), xs, resets)
    assert ys.shape == (6, 8)

    # In two chunks, the carry handed over: the same outputs.
    carry, head = model(model.init_carry(), xs[:2], resets[:2])
    _, tail = model(carry, xs[2:], resets[2:])
    assert jnp.allclose(ys, jnp.concatenate([head, tail]), atol=1e-5)
    ```
    """

    cell: AbstractMemoroidCell
    scan: Literal["auto", "associative", "chunked", "sequential"] = eqx.field(
        static=True, default="auto"
    )
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.scan not in _SCANS:
            raise ValueError(
                f"Memoroid: `scan` must be one of {', '.join(map(repr, _SCANS))}; "
                f"got {self.scan!r}."
            )
        if self.chunk_size is not None and (
            isinstance(self.chunk_size, bool)
            or not isinstance(self.chunk_size, int)
            or self.chunk_size < 1
        ):
            raise ValueError(
                f"Memoroid: `chunk_size` must be a positive int or None; "
                f"got {self.chunk_size!r}."
            )

    @property
    def in_features(self) -> int:
        """The width of the inputs (the cell's `in_features`)."""
        return self.cell.in_features

    def init_carry(self) -> Element:
        """The cell's identity element; for a cell with an input window, the pair
        `(identity, history)` with `history` the previous `window - 1` inputs
        (zeros at an episode start)."""
        if self.cell.window == 1:
            return self.cell.identity()
        history = jnp.zeros((self.cell.window - 1, self.cell.in_features))
        return self.cell.identity(), history

    def resolved_scan(self, length: int) -> str:
        """The scan used for a sequence of `length` steps (resolves `"auto"`)."""
        if self.scan != "auto":
            return self.scan
        if jax.default_backend() != "cpu":
            return "associative"
        # On the CPU (2 cores, `benchmarks/RESULTS.md`): a sequence of a few
        # chunks is a small batch of short loops, which the chunked scan widens;
        # a long one is folded in order, its memory bounded by rematerialisation.
        if (self.chunk_size or chunk_size_for(length)) < length <= 512:
            return "chunked"
        return "sequential"

    def _operator(self, left, right):
        (a, flag_a), (b, flag_b) = left, right
        combined = jax.vmap(self.cell.combine)(a, b)
        return _select(flag_b, b, combined), flag_a | flag_b

    def _step(self, state: Element, element: Element, reset: Bool[Array, ""]):
        return reset_carry(reset, element, self.cell.combine(state, element))

    def _fold(self, state: Element, elements: Element, resets: Bool[Array, " time"]):
        """Every prefix aggregate, one element per step (`lax.scan`)."""

        def step(state, inputs):
            state = self._step(state, *inputs)
            return state, state

        return lax.scan(step, state, (elements, resets))[1]

    def _sequential(self, state, inputs, resets):
        """Lift, fold and read step by step, so neither the elements nor the prefix
        aggregates are stacked over time (for a matrix-memory cell they are the
        largest arrays by far); chunks are rematerialised in the backward pass
        (`remat_scan`)."""

        def step(state, step_inputs):
            x, reset = step_inputs
            state = self._step(state, self.cell.lift(x), reset)
            return state, self.cell.read(state, x)

        return remat_scan(step, state, (inputs, resets), self.chunk_size)

    def _associative(self, state, elements, resets):
        elements = _concat(jtu.tree_map(lambda c: c[None], state), elements)
        flags = jnp.concatenate([jnp.zeros((1,), bool), resets])
        states, _ = lax.associative_scan(self._operator, (elements, flags))
        return jtu.tree_map(lambda s: s[1:], states)

    def _chunked(self, state, elements, resets):
        length = resets.shape[0]
        size = self.chunk_size or chunk_size_for(length)
        num = -(-length // size)
        pad = num * size - length
        identity = self.cell.identity()
        # Identity elements after the end change no earlier prefix.
        elements = split_time(pad_time(elements, pad, identity), num)
        resets = split_time(pad_time(resets, pad), num)
        # Within each chunk, from the identity; all chunks at once.
        local = jax.vmap(self._fold, in_axes=(None, 0, 0))(identity, elements, resets)
        started = jnp.cumsum(resets, axis=1) > 0
        # Across chunks, in order: the aggregate before each chunk.
        totals = jtu.tree_map(lambda s: s[:, -1], local)
        after = self._fold(state, totals, started[:, -1])
        before = _concat(jtu.tree_map(lambda c: c[None], state), after)

        def finish(prefix, local, started):
            combined = jax.vmap(self.cell.combine, in_axes=(None, 0))(prefix, local)
            return _select(started, local, combined)

        states = jax.vmap(finish)(
            jtu.tree_map(lambda b: b[:-1], before), local, started
        )
        return merge_time(states, length)

    @jax.named_scope("memrl_eqx.nn.Memoroid")
    def __call__(
        self,
        carry: Element,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Element, Float[Array, "time out_features"]]:
        check_sequence(type(self.cell).__name__, xs, resets, self.cell.in_features)
        if self.cell.window == 1:
            state, inputs = carry, xs
        else:
            state, history = carry
            inputs, history = _windows(history, xs, resets)
        scan = self.resolved_scan(xs.shape[0])
        if scan == "sequential":
            new_state, ys = self._sequential(state, inputs, resets)
        else:
            elements = jax.vmap(self.cell.lift)(inputs)
            parallel = self._associative if scan == "associative" else self._chunked
            states = parallel(state, elements, resets)
            new_state = jtu.tree_map(lambda s: s[-1], states)
            ys = jax.vmap(self.cell.read)(states, inputs)
        new_carry = new_state if self.cell.window == 1 else (new_state, history)
        return new_carry, ys
