"""`IndRNNCell` (Li et al. 2018): the independently recurrent neural network."""

import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class IndRNNCell(AbstractCell):
    """The independently recurrent neural network: every unit sees only its own
    previous state.

    $h' = \\phi(W x + u \\odot h + b)$, with a recurrent weight *vector* $u$ and
    the activation $\\phi$ (ReLU by default). The carry and the output are $h'$,
    shape `(features,)`; the carry starts at zero. $W x + b$ is the input
    projection.

    Because the recurrence is elementwise, the gradient through $T$ steps of one
    unit is governed by $u_i^T$ (times the activation's slopes); Li et al. keep
    it from exploding or vanishing by bounding $|u_i|$. With `recurrent_max` set,
    $u$ is clipped to $[-\\text{recurrent\\_max}, \\text{recurrent\\_max}]$ in the
    forward pass (e.g. $2^{1/T}$ for a horizon of $T$ steps).

    **Arguments:** `in_features`, `features` (the hidden and output size),
    `activation` (default `jax.nn.relu`), `recurrent_max` (default `None`: no
    clipping), `key` (keyword only). $W$ is uniform in
    $\\pm 1/\\sqrt{\\text{in\\_features}}$, $u$ uniform in $[0, 1]$, $b = 0$.
    """

    weight_ih: Float[Array, "features in_features"]
    weight_hh: Float[Array, " features"]
    bias: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    recurrent_max: float | None = eqx.field(static=True)
    # The parameters of the recurrence and each one's unit axis: the recurrence is
    # element-wise, so `RTRL` can compute exact online gradients.
    rtrl_parameters: ClassVar[dict[str, int]] = {
        "weight_ih": 0,
        "weight_hh": 0,
        "bias": 0,
    }

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        activation: Callable[[Array], Array] = jax.nn.relu,
        recurrent_max: float | None = None,
        key: PRNGKeyArray,
    ):
        if recurrent_max is not None and not recurrent_max > 0:
            raise ValueError(
                f"IndRNNCell: recurrent_max must be positive or None; got "
                f"recurrent_max={recurrent_max}."
            )
        k1, k2 = jr.split(key)
        bound = 1 / math.sqrt(in_features)
        self.weight_ih = jr.uniform(
            k1, (features, in_features), minval=-bound, maxval=bound
        )
        self.weight_hh = jr.uniform(k2, (features,))
        self.bias = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.activation = activation
        self.recurrent_max = recurrent_max

    def init_carry(self) -> Float[Array, " features"]:
        return jnp.zeros((self.features,), self.weight_hh.dtype)

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        return self.weight_ih @ x + self.bias

    @jax.named_scope("memrl_eqx.nn.IndRNNCell")
    def recurrence(
        self, carry: Float[Array, " features"], u: Float[Array, " features"]
    ) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
        recurrent = self.weight_hh
        if self.recurrent_max is not None:
            recurrent = jnp.clip(recurrent, -self.recurrent_max, self.recurrent_max)
        h = self.activation(u + recurrent * carry)
        return h, h
