"""`MGUCell` (Zhou et al. 2016): the minimal gated unit."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class MGUCell(AbstractCell):
    """The minimal gated unit: a GRU with a single (forget) gate.

    $f = \\sigma(W_f x + U_f h + b_f)$,
    $\\tilde h = \\tanh(W_h x + U_h (f \\odot h) + b_h)$,
    $h' = (1 - f) \\odot h + f \\odot \\tilde h$.
    The carry and the output are $h'$, shape `(features,)`; the carry starts at
    zero and, as a convex combination of $h$ and $\\tilde h$, stays in
    $(-1, 1)$. $W_f x + b_f$ and $W_h x + b_h$ are the input projection (stacked
    as rows `[f, h]`).

    **Arguments:** `in_features`, `features` (the hidden and output size), `key`
    (keyword only). All weights and biases are uniform in
    $\\pm 1/\\sqrt{\\text{features}}$.
    """

    weight_ih: Float[Array, "2 features in_features"]
    weight_f: Float[Array, "features features"]
    weight_h: Float[Array, "features features"]
    bias: Float[Array, "2 features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(self, *, in_features: int, features: int, key: PRNGKeyArray):
        k1, k2, k3, k4 = jr.split(key, 4)
        bound = 1 / math.sqrt(features)
        uniform = lambda k, shape: jr.uniform(k, shape, minval=-bound, maxval=bound)
        self.weight_ih = uniform(k1, (2, features, in_features))
        self.weight_f = uniform(k2, (features, features))
        self.weight_h = uniform(k3, (features, features))
        self.bias = uniform(k4, (2, features))
        self.in_features = in_features
        self.features = features

    def init_carry(self) -> Float[Array, " features"]:
        return jnp.zeros((self.features,), self.weight_f.dtype)

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, "2 features"]:
        return self.weight_ih @ x + self.bias

    @jax.named_scope("memrl_eqx.nn.MGUCell")
    def recurrence(
        self, carry: Float[Array, " features"], u: Float[Array, "2 features"]
    ) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
        f = jax.nn.sigmoid(u[0] + self.weight_f @ carry)
        candidate = jnp.tanh(u[1] + self.weight_h @ (f * carry))
        h = (1 - f) * carry + f * candidate
        return h, h
