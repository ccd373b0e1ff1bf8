"""`GLU`: a gated feed-forward block (Shazeer 2020, "GLU variants")."""

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._linear import Linear


class GLU(eqx.Module):
    """`down(activation(gate) * value)` with `(gate, value) = up(x)`, on one step:
    `(features,) -> (features,)`. The hidden width is
    `ceil(expansion_factor * features)` (xLSTM's sLSTM block uses 4/3).

    **Arguments** (keyword only): `features`, the width of the inputs and
    outputs; `expansion_factor` (default 4.0, positive), the hidden width over
    `features`; `activation`, applied to the gate (default `jax.nn.gelu`:
    GeGLU; `jax.nn.swish` gives SwiGLU); `key`. Both layers are orthogonal with
    scale 1 and zero bias.
    """

    up: Linear
    down: Linear
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        *,
        features: int,
        expansion_factor: float = 4.0,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        key: PRNGKeyArray,
    ):
        if expansion_factor <= 0:
            raise ValueError(
                f"GLU: `expansion_factor` must be positive; got {expansion_factor}."
            )
        k1, k2 = jr.split(key)
        hidden = math.ceil(expansion_factor * features)
        self.up = Linear(features, 2 * hidden, scale=1.0, key=k1)
        self.down = Linear(hidden, features, scale=1.0, key=k2)
        self.activation = activation

    @property
    def in_features(self) -> int:
        """The width of the inputs and outputs."""
        return self.up.in_features

    def __call__(
        self, x: Float[Array, " features"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " features"]:
        gate, value = jnp.split(self.up(x), 2)
        return self.down(self.activation(gate) * value)
