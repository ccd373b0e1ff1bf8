"""`ElmanCell` (Elman 1990): the simple recurrent network."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class ElmanCell(AbstractCell):
    """The simple (Elman) recurrent network.

    $h' = \\tanh(W x + U h + b)$. The carry and the output are $h'$, shape
    `(features,)`; the carry starts at zero and stays in $(-1, 1)$. $W x + b$ is
    the input projection, computed for every step at once by `RNN`.

    **Arguments:** `in_features`, `features` (the hidden and output size), `key`
    (keyword only). $W$, $U$ and $b$ are uniform in
    $\\pm 1/\\sqrt{\\text{features}}$.
    """

    weight_ih: Float[Array, "features in_features"]
    weight_hh: Float[Array, "features features"]
    bias: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(self, *, in_features: int, features: int, key: PRNGKeyArray):
        k1, k2, k3 = jr.split(key, 3)
        bound = 1 / math.sqrt(features)
        uniform = lambda k, shape: jr.uniform(k, shape, minval=-bound, maxval=bound)
        self.weight_ih = uniform(k1, (features, in_features))
        self.weight_hh = uniform(k2, (features, features))
        self.bias = uniform(k3, (features,))
        self.in_features = in_features
        self.features = features

    def init_carry(self) -> Float[Array, " features"]:
        return jnp.zeros((self.features,), self.weight_hh.dtype)

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        return self.weight_ih @ x + self.bias

    @jax.named_scope("memrl_eqx.nn.ElmanCell")
    def recurrence(
        self, carry: Float[Array, " features"], u: Float[Array, " features"]
    ) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
        h = jnp.tanh(u + self.weight_hh @ carry)
        return h, h
