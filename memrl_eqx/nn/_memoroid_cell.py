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
