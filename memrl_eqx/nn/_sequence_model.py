"""The sequence-model contract: the torso slot of every network."""

import abc

import equinox as eqx
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry


class AbstractSequenceModel(eqx.Module):
    """A model of one sequence, with a carry handed from call to call.

    `carry, ys = model(carry, xs, resets)` with `xs` of shape `(time, in_features)`
    and `resets` of shape `(time,)`: `resets[t]` means `xs[t]` starts a new episode,
    so the carry is returned to `init_carry()` before step `t`.

    Every sequence model satisfies (and is tested for):

    - *chunking*: running `xs[:k]` then `xs[k:]` with the carry handed over equals
      running `xs` at once;
    - *reset isolation*: outputs at and after a reset do not depend on inputs before
      it, and their gradients with respect to those inputs are exactly zero;
    - the carry's structure, shapes and dtypes never change from call to call.

    Models are unbatched: batch with `jax.vmap` / `eqx.filter_vmap`.
    """

    @abc.abstractmethod
    def init_carry(self) -> Carry:
        """The carry at the start of an episode (a PyTree, possibly `()`)."""

    @abc.abstractmethod
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time out_features"]]:
        """Run the model over one sequence.

        **Arguments:**

        - `carry`: the carry from `init_carry()` or from the previous call.
        - `xs`: inputs, shape `(time, in_features)`.
        - `resets`: boolean, shape `(time,)`; True where a new episode starts.

        **Returns:** `(carry, ys)`, the carry after the last step and the outputs,
        shape `(time, out_features)`.
        """
