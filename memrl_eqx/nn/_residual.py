"""`Residual`: a skip connection around a sequence model."""

import jax
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._misc import check_keeps_shape
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


class Residual(AbstractSequenceModel):
    """`ys = xs + module(xs)`; the carry is the module's.

    The module must keep the width: its outputs have the shape of `xs`. A
    per-step module is wrapped in `SequenceModelWrapper`.

    **Arguments:** `module`, a sequence model or a per-step module (e.g. an
    `FFN`, often inside a `PreNorm`) whose outputs have the width of its inputs.
    """

    module: AbstractSequenceModel

    def __init__(self, module):
        self.module = as_sequence_model(module)

    @property
    def in_features(self) -> int | None:
        """The width of the inputs, if the wrapped module declares it."""
        return getattr(self.module, "in_features", None)

    def init_carry(self) -> Carry:
        return self.module.init_carry()

    @jax.named_scope("memrl_eqx.nn.Residual")
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time features"]]:
        carry, ys = self.module(carry, xs, resets)
        check_keeps_shape("Residual", xs, ys)
        return carry, xs + ys
