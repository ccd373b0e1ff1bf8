"""`Stack`: sequence models applied one after another."""

from collections.abc import Sequence

import jax
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


class Stack(AbstractSequenceModel):
    """Applies `layers` in order; itself a sequence model.

    The carry is the tuple of the layers' carries, so chunking and reset isolation
    hold for the stack whenever they hold for every layer. A per-step module
    (an `MLP`, an `FFN`) is accepted as a layer and wrapped in
    `SequenceModelWrapper`.

    Each layer is its own module with its own parameters: build a deep stack from
    a function of a key (`Stack([make_block(k) for k in jr.split(key, n)])`);
    `Stack([block] * n)` would repeat one block's parameters `n` times.
    """

    layers: tuple[AbstractSequenceModel, ...]

    def __init__(self, layers: Sequence):
        if len(layers) == 0:
            raise ValueError("Stack: `layers` must not be empty.")
        self.layers = tuple(as_sequence_model(layer) for layer in layers)

    def init_carry(self) -> tuple[Carry, ...]:
        return tuple(layer.init_carry() for layer in self.layers)

    @jax.named_scope("memrl_eqx.nn.Stack")
    def __call__(
        self,
        carry: tuple[Carry, ...],
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[tuple[Carry, ...], Float[Array, "time out_features"]]:
        new_carry = []
        for layer, layer_carry in zip(self.layers, carry):
            layer_carry, xs = layer(layer_carry, xs, resets)
            new_carry.append(layer_carry)
        return tuple(new_carry), xs
