"""`FFN`: the position-wise feed-forward block of a transformer."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._linear import Linear


class FFN(eqx.Module):
    """`Linear(features -> expansion_factor * features)`, `activation`,
    `Linear(-> features)`, on one step: `(features,) -> (features,)`.

    A per-step module: inside `Stack`, `Residual` or `PreNorm` it is applied at
    every step.

    **Arguments** (keyword only): `features`, the width of the inputs and
    outputs; `expansion_factor` (default 4), the hidden width is
    `expansion_factor * features`; `activation` (default `jax.nn.gelu`); `key`.
    Both layers are orthogonal with scale 1 and zero bias.
    """

    up: Linear
    down: Linear
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        *,
        features: int,
        expansion_factor: int = 4,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        key: PRNGKeyArray,
    ):
        k1, k2 = jr.split(key)
        hidden = expansion_factor * features
        self.up = Linear(features, hidden, scale=1.0, key=k1)
        self.down = Linear(hidden, features, scale=1.0, key=k2)
        self.activation = activation

    @property
    def in_features(self) -> int:
        """The width of the inputs and outputs."""
        return self.up.in_features

    def __call__(
        self, x: Float[Array, " features"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " features"]:
        return self.down(self.activation(self.up(x)))
