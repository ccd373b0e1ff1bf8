"""`Categorical`: a policy head for discrete actions."""

import distrax
import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear


class Categorical(eqx.Module):
    """A categorical policy over `action_dim` actions.

    Maps torso outputs `(time, in_features)` to a `distrax.Categorical` whose
    logits have shape `(time, action_dim)`. The output layer is orthogonal with a
    small `scale` (default 0.01), so the initial policy is nearly uniform.

    **Arguments** (keyword only): `in_features`, the width of the torso's
    outputs; `action_dim`, the number of actions; `scale`; `key`.
    """

    linear: Linear
    action_dim: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        scale: float = 0.01,
        key: PRNGKeyArray,
    ):
        self.linear = Linear(in_features, action_dim, scale=scale, key=key)
        self.action_dim = action_dim

    def __call__(self, x: Float[Array, "time in_features"]) -> distrax.Categorical:
        return distrax.Categorical(logits=jax.vmap(self.linear)(x))
