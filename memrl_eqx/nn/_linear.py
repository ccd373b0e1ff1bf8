"""`Linear` with orthogonal initialisation, the building block of MLPs and heads."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class Linear(eqx.Module):
    """An affine map $y = W x + b$ with orthogonally initialised $W$ (scaled by
    `scale`) and zero $b$, the usual initialisation for policy-gradient agents.

    Acts on one vector: `(in_features,) -> (out_features,)`.

    **Arguments:** `in_features`, `out_features` (the sizes of $x$ and $y$);
    `scale` (keyword, default $\\sqrt 2$, the gain of the orthogonal $W$; e.g.
    0.01 for a policy's output layer, 1.0 for a value's); `key` (keyword only).
    """

    weight: Float[Array, "out_features in_features"]
    bias: Float[Array, " out_features"]
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        scale: float = 2**0.5,
        key: PRNGKeyArray,
    ):
        init = jax.nn.initializers.orthogonal(scale)
        self.weight = init(key, (out_features, in_features), jnp.float32)
        self.bias = jnp.zeros((out_features,))
        self.in_features = in_features
        self.out_features = out_features

    def __call__(
        self, x: Float[Array, " in_features"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " out_features"]:
        return self.weight @ x + self.bias
