"""Step cells: one time step of a recurrence, run over sequences by `RNN`."""

import abc

import equinox as eqx
from equinox import AbstractVar
from jaxtyping import Array, Float, PyTree

from .._custom_types import Carry


class AbstractCell(eqx.Module):
    """A recurrent cell acting on one time step: `carry, y = cell(carry, x)`.

    A step is split in two so that `RNN` can run the part that depends on the
    input alone for all time steps at once (one large matrix product) and keep only
    the recurrence inside its sequential scan:

    - `input_projection(x) -> u` depends on `x` only (return `x` if there is
      nothing to precompute);
    - `recurrence(carry, u) -> (carry, y)` is the sequential part.

    `cell(carry, x)` is `recurrence(carry, input_projection(x))`. Cells are
    unbatched: `x` has shape `(in_features,)`.
    """

    in_features: AbstractVar[int]

    @abc.abstractmethod
    def init_carry(self) -> Carry:
        """The carry at the start of an episode."""

    @abc.abstractmethod
    def input_projection(self, x: Float[Array, " in_features"]) -> PyTree[Array]:
        """The part of a step that depends on the input alone."""

    @abc.abstractmethod
    def recurrence(
        self, carry: Carry, u: PyTree[Array]
    ) -> tuple[Carry, Float[Array, " out_features"]]:
        """The sequential part of a step, given `u = input_projection(x)`."""

    def __call__(
        self, carry: Carry, x: Float[Array, " in_features"]
    ) -> tuple[Carry, Float[Array, " out_features"]]:
        """One step: returns the new carry and the output, shape `(out_features,)`."""
        return self.recurrence(carry, self.input_projection(x))
