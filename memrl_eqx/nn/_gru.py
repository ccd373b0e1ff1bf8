"""`GRUCell` (Cho et al. 2014)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class GRUCell(AbstractCell):
    """A gated recurrent unit.

    $r, z = \\sigma(W_{ir,iz} x + b_{ir,iz} + W_{hr,hz} h + b_{hr,hz})$,
    $n = \\tanh(W_{in} x + b_{in} + r \\odot (W_{hn} h + b_{hn}))$,
    $h' = (1 - z) \\odot n + z \\odot h$. The carry and the output are $h'$,
    shape `(features,)`; the carry starts at zero.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import GRUCell, RNN

    cell = GRUCell(in_features=4, features=8, key=jax.random.key(0))
    carry, y = cell(cell.init_carry(), jnp.ones(4))  # one step
    assert carry.shape == y.shape == (8,)

    rnn = RNN(cell)  # over a sequence
    carry, ys = rnn(rnn.init_carry(), jnp.ones((5, 4)), jnp.zeros(5, bool))
    assert ys.shape == (5, 8)
    ```

    **Arguments:** `in_features`, `features` (the hidden and output size), `key`
    (keyword only). Weights are uniform in $\\pm 1/\\sqrt{\\text{features}}$."""

    weight_ih: Float[Array, "gates in_features"]
    weight_hh: Float[Array, "gates features"]
    bias_ih: Float[Array, " gates"]
    bias_hh: Float[Array, " gates"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(self, *, in_features: int, features: int, key: PRNGKeyArray):
        k1, k2, k3, k4 = jr.split(key, 4)
        bound = 1 / math.sqrt(features)
        uniform = lambda k, shape: jr.uniform(k, shape, minval=-bound, maxval=bound)
        self.weight_ih = uniform(k1, (3 * features, in_features))
        self.weight_hh = uniform(k2, (3 * features, features))
        self.bias_ih = uniform(k3, (3 * features,))
        self.bias_hh = uniform(k4, (3 * features,))
        self.in_features = in_features
        self.features = features

    def init_carry(self) -> Float[Array, " features"]:
        return jnp.zeros((self.features,), self.weight_hh.dtype)

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> tuple[
        Float[Array, " features"], Float[Array, " features"], Float[Array, " features"]
    ]:
        """`(u_r, u_z, u_n)`, the input's part of each gate's pre-activation.

        Three arrays, not one of `3 * features`: `RNN` then scans three
        `(time, features)` arrays, and the fused gate arithmetic of a step reads
        its own rows instead of slicing them out of one per-step row, which XLA
        on the CPU does not vectorise (the forward pass ~1.7x faster, the values
        bit for bit the same; issue 20 in `benchmarks/RESULTS.md`)."""
        u_r, u_z, u_n = jnp.split(self.weight_ih @ x + self.bias_ih, 3)
        return u_r, u_z, u_n

    @jax.named_scope("memrl_eqx.nn.GRUCell")
    def recurrence(
        self,
        carry: Float[Array, " features"],
        u: tuple[
            Float[Array, " features"],
            Float[Array, " features"],
            Float[Array, " features"],
        ],
    ) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
        hh = self.weight_hh @ carry + self.bias_hh
        u_r, u_z, u_n = u
        h_r, h_z, h_n = jnp.split(hh, 3)
        r = jax.nn.sigmoid(u_r + h_r)
        z = jax.nn.sigmoid(u_z + h_z)
        n = jnp.tanh(u_n + r * h_n)
        h = (1 - z) * n + z * carry
        return h, h
