"""Memoroid cells: recurrences written as a monoid, run by `Memoroid`."""

import abc

import equinox as eqx
from equinox import AbstractClassVar, AbstractVar
from jaxtyping import Array, Float

from .._custom_types import Element


class AbstractMemoroidCell(eqx.Module):
    """A recurrence written as a monoid (Morad et al., "Memory Monoids").

    - `identity()`: the identity element $e$; also the carry at an episode start.
    - `lift(x)`: the element contributed by one input $x_t$.
    - `combine(a, b)`: the associative operator $a \\bullet b$, with `a` the earlier
      and `b` the later segment; $e \\bullet b = b$.
    - `read(state, x)`: the output at a step, from the prefix aggregate `state` and
      that step's input.

    All four act on unbatched elements (PyTrees of arrays without a time axis);
    `Memoroid` vmaps them over time. Because `combine` is associative, `Memoroid`
    can aggregate a sequence in $O(\\log T)$ depth with an associative scan, and
    the result equals the step-by-step recurrence.

    **Input windows.** A cell whose step looks at the last `window` inputs (a
    causal convolution, as in mLSTM and Mamba2) sets the class variable
    `window > 1`; `lift` and `read` then receive `x` of shape
    `(window, in_features)`, oldest first, the last row being the current input.
    `Memoroid` keeps the previous `window - 1` inputs in its carry and zeroes
    every row from before the latest episode start, so the window never crosses
    an episode boundary and chunked or step-by-step runs see the same windows.
    Cells without a window set `window = 1` and receive `x` of shape
    `(in_features,)`.

    A subclass declares the field `in_features` and the class variable `window`
    and implements the four methods; [`memrl_eqx.nn.Memoroid`][] runs it over
    sequences, with resets and batching.

    **Example:** the exponential moving average $h_t = d\\,h_{t-1} + (1 - d)\\,W
    x_t$ as a monoid: an element is `(state, decay)`, a segment's contribution
    and the factor $d^n$ it applies to what came before it.

    ```python
    from typing import ClassVar

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import AbstractMemoroidCell, Memoroid


    class EMACell(AbstractMemoroidCell):
        weight: jax.Array
        decay: float = eqx.field(static=True)
        in_features: int = eqx.field(static=True)
        window: ClassVar[int] = 1

        def __init__(self, in_features, features, decay, *, key):
            self.weight = jax.random.normal(key, (features, in_features))
            self.decay = decay
            self.in_features = in_features

        def identity(self):
            return jnp.zeros(self.weight.shape[0]), jnp.ones(())

        def lift(self, x):
            return (1 - self.decay) * (self.weight @ x), jnp.full((), self.decay)

        def combine(self, a, b):
            (state_a, decay_a), (state_b, decay_b) = a, b
            return decay_b * state_a + state_b, decay_a * decay_b

        def read(self, state, x):
            return state[0]


    cell = EMACell(4, 8, decay=0.9, key=jax.random.key(0))
    xs, resets = jnp.ones((6, 4)), jnp.zeros(6, bool)
    _, ys = Memoroid(cell, scan="associative")(cell.identity(), xs, resets)
    _, ys_fold = Memoroid(cell, scan="sequential")(cell.identity(), xs, resets)
    assert ys.shape == (6, 8) and jnp.allclose(ys, ys_fold, atol=1e-5)
    ```
    """

    in_features: AbstractVar[int]
    window: AbstractClassVar[int]

    @abc.abstractmethod
    def identity(self) -> Element:
        """The identity element, also the carry at the start of an episode."""

    @abc.abstractmethod
    def lift(self, x: Float[Array, " in_features"]) -> Element:
        """The element contributed by one input."""

    @abc.abstractmethod
    def combine(self, a: Element, b: Element) -> Element:
        """The associative operator: `a` earlier, `b` later."""

    @abc.abstractmethod
    def read(
        self, state: Element, x: Float[Array, " in_features"]
    ) -> Float[Array, " out_features"]:
        """The output of a step from its prefix aggregate and its input."""
