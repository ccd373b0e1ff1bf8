"""`DiscreteQNetwork`: action values for discrete actions."""

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear


class DiscreteQNetwork(eqx.Module):
    """Action values: `(time, in_features) -> (time, action_dim)`."""

    linear: Linear
    action_dim: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        self.linear = Linear(in_features, action_dim, scale=scale, key=key)
        self.action_dim = action_dim

    def __call__(
        self, x: Float[Array, "time in_features"]
    ) -> Float[Array, "time action_dim"]:
        return jax.vmap(self.linear)(x)
