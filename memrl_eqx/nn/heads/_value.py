"""`VNetwork`: a state-value head."""

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear


class VNetwork(eqx.Module):
    """A state-value head: `(time, in_features) -> (time,)`."""

    linear: Linear

    def __init__(self, *, in_features: int, scale: float = 1.0, key: PRNGKeyArray):
        self.linear = Linear(in_features, 1, scale=scale, key=key)

    def __call__(self, x: Float[Array, "time in_features"]) -> Float[Array, " time"]:
        return jax.vmap(self.linear)(x)[:, 0]
