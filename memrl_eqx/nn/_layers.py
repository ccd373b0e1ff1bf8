"""Small stateless layers used as feature extractors."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, Shaped


class Flatten(eqx.Module):
    """Flattens one observation of any shape to a float vector.

    Like every layer here it takes an unused keyword `key`, as `eqx.nn.Sequential`
    passes one to each layer.
    """

    def __call__(
        self, x: Shaped[Array, "..."], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " features"]:
        return jnp.ravel(x).astype(jnp.float32)


class Identity(eqx.Module):
    """Returns its input unchanged."""

    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        return x


class OneHot(eqx.Module):
    """Encodes a discrete value (an action) as a one-hot float vector.

    **Arguments:** `num_classes`, the number of values: an integer `x` in
    `0..num_classes - 1` becomes a float32 vector of shape `(num_classes,)` (all
    zeros for a value outside that range). E.g. `OneHot(num_actions)` as the
    `action_extractor` of a [`memrl_eqx.nn.FeatureExtractor`][].
    """

    num_classes: int = eqx.field(static=True)

    def __call__(
        self, x: Int[Array, ""], *, key: PRNGKeyArray | None = None
    ) -> Float[Array, " num_classes"]:
        return jax.nn.one_hot(x, self.num_classes, dtype=jnp.float32)
