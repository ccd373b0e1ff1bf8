"""`MLP`: a stack of `Linear` layers with an activation between them."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._linear import Linear


class MLP(eqx.Module):
    """A multi-layer perceptron on one vector: `(in_features,) -> (features[-1],)`.

    **Arguments:** `in_features`; `features`, the width of every layer (the seed
    documents' `MLP(features=(128,))`); `activation` (default ReLU);
    `activate_final` (default True: the last layer is activated too, as a feature
    extractor wants); `key` (keyword only).
    """

    layers: tuple[Linear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)
    activate_final: bool = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        features: Sequence[int],
        activation: Callable[[Array], Array] = jax.nn.relu,
        activate_final: bool = True,
        key: PRNGKeyArray,
    ):
        features = tuple(features)
        if len(features) == 0 or any(f <= 0 for f in features):
            raise ValueError(
                f"MLP: `features` must be a non-empty sequence of positive widths; "
                f"got {features}."
            )
        sizes = (in_features,) + features
        keys = jr.split(key, len(features))
        self.layers = tuple(
            Linear(i, o, key=k) for i, o, k in zip(sizes[:-1], sizes[1:], keys)
        )
        self.activation = activation
        self.activate_final = activate_final
        self.in_features = in_features
        self.out_features = features[-1]

    def __call__(
        self, x: Float[Array, " in_features"], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " out_features"]:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.activate_final or i < len(self.layers) - 1:
                x = self.activation(x)
        return x
