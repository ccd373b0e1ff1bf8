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
from ._misc import check_sequence, reset_carry
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


class Memoroid(AbstractSequenceModel):
    """Runs a monoid cell over a sequence with a *resettable* scan.

    Each element carries a flag "a new episode starts inside me"; the resettable
    operator $(a, f_a) \\circ (b, f_b) = (b$ if $f_b$ else $a \\bullet b$,
    $f_a \\lor f_b)$ is associative, so resets cost nothing extra. The incoming
    carry is prepended as element 0 with its flag clear.

    `scan="associative"` uses `jax.lax.associative_scan` ($O(\\log T)$ depth);
    `scan="sequential"` folds the same operator step by step with `jax.lax.scan`.
    Both give the same result up to float rounding.

    !!! example

        ```python
        import jax, jax.numpy as jnp
        from memrl_eqx.nn import Memoroid, LRUCell

        cell = LRUCell(in_features=8, features=32, hidden_dim=16, key=jax.random.key(0))
        model = Memoroid(cell)
        carry, ys = model(model.init_carry(), jnp.ones((5, 8)), jnp.zeros(5, bool))
        assert ys.shape == (5, 32)
        ```
    """

    cell: AbstractMemoroidCell
    scan: Literal["associative", "sequential"] = eqx.field(
        static=True, default="associative"
    )

    def __check_init__(self):
        if self.scan not in ("associative", "sequential"):
            raise ValueError(
                f"Memoroid: `scan` must be 'associative' or 'sequential'; "
                f"got {self.scan!r}."
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

    def _operator(self, left, right):
        (a, flag_a), (b, flag_b) = left, right
        combined = jax.vmap(self.cell.combine)(a, b)
        return _select(flag_b, b, combined), flag_a | flag_b

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
        elements = jax.vmap(self.cell.lift)(inputs)
        if self.scan == "associative":
            elements = jtu.tree_map(
                lambda c, e: jnp.concatenate([c[None], e]), state, elements
            )
            flags = jnp.concatenate([jnp.zeros((1,), bool), resets])
            states, _ = lax.associative_scan(self._operator, (elements, flags))
            states = jtu.tree_map(lambda s: s[1:], states)
        else:

            def step(state, inputs):
                element, reset = inputs
                state = reset_carry(reset, element, self.cell.combine(state, element))
                return state, state

            _, states = lax.scan(step, state, (elements, resets))
        new_state = jtu.tree_map(lambda s: s[-1], states)
        ys = jax.vmap(self.cell.read)(states, inputs)
        new_carry = new_state if self.cell.window == 1 else (new_state, history)
        return new_carry, ys
