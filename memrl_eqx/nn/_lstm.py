"""`LSTMCell` (Hochreiter & Schmidhuber 1997)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class LSTMCell(AbstractCell):
    """A long short-term memory cell.

    $i, f, g, o$ from $W_i x + b + W_h h$; $c' = \\sigma(f) \\odot c +
    \\sigma(i) \\odot \\tanh(g)$, $h' = \\sigma(o) \\odot \\tanh(c')$. The carry is
    `(h, c)`, both shape `(features,)` and zero at an episode start; the output is
    $h'$.

    **Arguments:** `in_features`, `features`, `key` (keyword only). Weights are
    uniform in $\\pm 1/\\sqrt{\\text{features}}$.
    """

    weight_ih: Float[Array, "gates in_features"]
    weight_hh: Float[Array, "gates features"]
    bias: Float[Array, " gates"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(self, *, in_features: int, features: int, key: PRNGKeyArray):
        k1, k2, k3 = jr.split(key, 3)
        bound = 1 / math.sqrt(features)
        uniform = lambda k, shape: jr.uniform(k, shape, minval=-bound, maxval=bound)
        self.weight_ih = uniform(k1, (4 * features, in_features))
        self.weight_hh = uniform(k2, (4 * features, features))
        self.bias = uniform(k3, (4 * features,))
        self.in_features = in_features
        self.features = features

    def init_carry(self) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
        zeros = jnp.zeros((self.features,), self.weight_hh.dtype)
        return zeros, zeros

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, " gates"]:
        return self.weight_ih @ x + self.bias

    @jax.named_scope("memrl_eqx.nn.LSTMCell")
    def recurrence(
        self,
        carry: tuple[Float[Array, " features"], Float[Array, " features"]],
        u: Float[Array, " gates"],
    ) -> tuple[
        tuple[Float[Array, " features"], Float[Array, " features"]],
        Float[Array, " features"],
    ]:
        h, c = carry
        i, f, g, o = jnp.split(u + self.weight_hh @ h, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h
