"""`VNetwork`: a state-value head."""

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear


class VNetwork(eqx.Module):
    """A state-value head: `(time, in_features) -> (time,)`.

    The value-head interface (shared with `HLGaussVNetwork`, `ContinuousQNetwork`
    and `GVF`):

    - `out = head(x)`: the values;
    - `head.value(out)`: the same array;
    - `head.loss(out, targets)`: `½ (out - targets)²` per step.

    `value` and `loss` accept any leading shape (`(time,)`, `(batch, time)`, ...).

    **Arguments:** `in_features`; `scale` (1.0), the orthogonal scale of the output
    layer; `key` (keyword only).
    """

    linear: Linear

    def __init__(self, *, in_features: int, scale: float = 1.0, key: PRNGKeyArray):
        self.linear = Linear(in_features, 1, scale=scale, key=key)

    def __call__(self, x: Float[Array, "time in_features"]) -> Float[Array, " time"]:
        return jax.vmap(self.linear)(x)[:, 0]

    def value(self, out: Float[Array, "*batch"]) -> Float[Array, "*batch"]:
        """The value estimate (the output itself)."""
        return out

    def loss(
        self, out: Float[Array, "*batch"], targets: Float[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """`½ (out - targets)²` per step (targets are not differentiated)."""
        return 0.5 * (out - jax.lax.stop_gradient(targets)) ** 2
