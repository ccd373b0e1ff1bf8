"""`Projection`: one linear map, optionally followed by an activation."""

from collections.abc import Callable

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray

from ._linear import Linear


class Projection(eqx.Module):
    """`activation(W x + b)` on one step: `(in_features,) -> (features,)`.

    A per-step module: in a `Stack` it changes the width between blocks (for
    example up to a transformer's width). `activation=None` (the default) leaves
    the map linear. **Arguments:** `in_features`, `features`, `activation`,
    `scale` (orthogonal-init gain, default 1), `key` (all keyword).
    """

    linear: Linear
    activation: Callable[[Array], Array] | None = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        activation: Callable[[Array], Array] | None = None,
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        self.linear = Linear(in_features, features, scale=scale, key=key)
        self.activation = activation

    @property
    def in_features(self) -> int:
        """The width of the inputs."""
        return self.linear.in_features

    @property
    def features(self) -> int:
        """The width of the outputs."""
        return self.linear.out_features

    def __call__(
        self, x: Float[Array, " in_features"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " features"]:
        y = self.linear(x)
        return y if self.activation is None else self.activation(y)
