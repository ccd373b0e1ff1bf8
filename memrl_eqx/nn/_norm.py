"""`PreNorm` and `PostNorm`: layer normalisation before or after a sequence model."""

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._misc import infer_features
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


class PreNorm(AbstractSequenceModel):
    """`module(LayerNorm(xs))`, the norm applied to every step; the carry is the
    module's.

    **Arguments:** `module` (a sequence model or a per-step module); `features`
    (keyword, the width of `xs`; inferred from `module.in_features` when omitted).
    """

    module: AbstractSequenceModel
    norm: eqx.nn.LayerNorm

    def __init__(self, module, *, features: int | None = None):
        features = infer_features("PreNorm", module, features)
        self.module = as_sequence_model(module)
        self.norm = eqx.nn.LayerNorm(features)

    @property
    def in_features(self) -> int:
        """The width of the inputs."""
        return self.norm.shape[0]  # pyright: ignore[reportIndexIssue]

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


class PostNorm(AbstractSequenceModel):
    """`LayerNorm(module(xs))`, the norm applied to every output step (the
    original transformer's placement); the carry is the module's.

    **Arguments:** `module` (a sequence model or a per-step module); `features`
    (keyword, the width of the module's outputs; inferred from
    `module.in_features` when omitted, i.e. for width-preserving modules).
    """

    module: AbstractSequenceModel
    norm: eqx.nn.LayerNorm

    def __init__(self, module, *, features: int | None = None):
        features = infer_features("PostNorm", module, features)
        self.module = as_sequence_model(module)
        self.norm = eqx.nn.LayerNorm(features)

    @property
    def in_features(self) -> int | None:
        """The width of the inputs, if the wrapped module declares it."""
        return getattr(self.module, "in_features", None)

    def init_carry(self) -> Carry:
        return self.module.init_carry()

    @jax.named_scope("memrl_eqx.nn.PostNorm")
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time features"]]:
        carry, ys = self.module(carry, xs, resets)
        return carry, jax.vmap(self.norm)(ys)
