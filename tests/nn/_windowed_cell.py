"""A minimal windowed monoid cell, to test `Memoroid`'s input-window mechanism
apart from any published model."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from memrl_eqx.nn import AbstractMemoroidCell


class WindowedDecayCell(AbstractMemoroidCell):
    """$h_t = a \\odot h_{t-1} + W \\mathrm{vec}(x_{t-2:t})$, $y_t = h_t$:
    a real diagonal recurrence over a causal window of 3 inputs."""

    weight: Float[Array, "features window_in"]
    decay_logit: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    window: ClassVar[int] = 3

    def __init__(self, in_features: int, features: int, *, key: PRNGKeyArray):
        k1, k2 = jr.split(key)
        self.weight = jr.normal(k1, (features, 3 * in_features)) / 3
        self.decay_logit = jr.normal(k2, (features,))
        self.in_features = in_features

    def identity(self):
        f = self.decay_logit.shape[0]
        return jnp.zeros((f,)), jnp.ones((f,))

    def lift(self, x: Float[Array, "3 in_features"]):
        return self.weight @ x.reshape(-1), jax.nn.sigmoid(self.decay_logit)

    def combine(self, a, b):
        return b[1] * a[0] + b[0], b[1] * a[1]

    def read(self, state, x: Float[Array, "3 in_features"]) -> Float[Array, " f"]:
        return state[0]
