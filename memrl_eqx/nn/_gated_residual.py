"""`GatedResidual`: GTrXL's GRU-type gate in place of a residual connection."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._custom_types import Carry
from ._misc import check_keeps_shape, infer_features
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


class GatedResidual(AbstractSequenceModel):
    """A skip connection gated like a GRU (GTrXL, Parisotto et al. 2020, eq. 9-12).

    With `x` the block's input (the residual stream) and `y =
    activation(module(x))` (ReLU by default, as in GTrXL), every step computes

    $r = \\sigma(W_r y + U_r x)$, $z = \\sigma(W_z y + U_z x - b_g)$,
    $\\hat h = \\tanh(W_g y + U_g (r \\odot x))$,
    $\\text{out} = (1 - z) \\odot x + z \\odot \\hat h$.

    The bias $b_g$ (`gate_bias`, default 2) starts $z$ near 0, so a freshly
    initialised block is close to the identity map, which is what makes
    GTrXL train stably in RL. The carry is the module's; the module must keep
    the width.

    **Arguments:** `module` (a sequence model or a per-step module), `features`
    (keyword; the width, inferred from `module.in_features` when omitted),
    `gate_bias`, `activation`, `key` (keyword).
    """

    module: AbstractSequenceModel
    weight_y: Float[Array, "3 features features"]
    weight_x: Float[Array, "2 features features"]
    weight_rx: Float[Array, "features features"]
    gate_bias: float = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        module,
        *,
        features: int | None = None,
        gate_bias: float = 2.0,
        activation: Callable[[Array], Array] = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        features = infer_features("GatedResidual", module, features)
        self.module = as_sequence_model(module)
        init = jax.nn.initializers.glorot_uniform()
        k_y, k_x, k_rx = jr.split(key, 3)
        self.weight_y = jax.vmap(lambda k: init(k, (features, features)))(
            jr.split(k_y, 3)
        )
        self.weight_x = jax.vmap(lambda k: init(k, (features, features)))(
            jr.split(k_x, 2)
        )
        self.weight_rx = init(k_rx, (features, features))
        self.gate_bias = gate_bias
        self.activation = activation

    @property
    def in_features(self) -> int:
        """The width of the inputs and outputs."""
        return self.weight_rx.shape[1]

    def init_carry(self) -> Carry:
        return self.module.init_carry()

    def gate(
        self, x: Float[Array, " features"], y: Float[Array, " features"]
    ) -> Float[Array, " features"]:
        """The gate on one step: `x` the skip input, `y` the activated module
        output."""
        wy_r, wy_z, wy_g = self.weight_y @ y
        ux_r, ux_z = self.weight_x @ x
        r = jax.nn.sigmoid(wy_r + ux_r)
        z = jax.nn.sigmoid(wy_z + ux_z - self.gate_bias)
        h = jnp.tanh(wy_g + self.weight_rx @ (r * x))
        return (1 - z) * x + z * h

    @jax.named_scope("memrl_eqx.nn.GatedResidual")
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time features"]]:
        carry, ys = self.module(carry, xs, resets)
        check_keeps_shape("GatedResidual", xs, ys)
        return carry, jax.vmap(self.gate)(xs, self.activation(ys))
