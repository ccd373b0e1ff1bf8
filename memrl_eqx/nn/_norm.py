"""`PreNorm`: layer normalisation in front of a sequence model."""

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


class PreNorm(AbstractSequenceModel):
    """`module(LayerNorm(xs))`, the norm applied to every step; the carry is the
    module's. **Arguments:** `module` (a sequence model or a per-step module),
    `features` (keyword: the width of `xs`)."""

    module: AbstractSequenceModel
    norm: eqx.nn.LayerNorm

    def __init__(self, module, *, features: int):
        self.module = as_sequence_model(module)
        self.norm = eqx.nn.LayerNorm(features)

    def init_carry(self) -> Carry:
        return self.module.init_carry()

    @jax.named_scope("memrl_eqx.nn.PreNorm")
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time out_features"]]:
        return self.module(carry, jax.vmap(self.norm)(xs), resets)
