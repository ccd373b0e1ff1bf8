"""`Repeat`: a deep stack of identically shaped layers, scanned over layers."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.lax as lax
import jax.random as jr
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._custom_types import Carry
from ._misc import check_keeps_shape
from ._sequence_model import AbstractSequenceModel
from ._stack import Stack
from ._wrapper import as_sequence_model


def _as_layer(layer: Any) -> AbstractSequenceModel:
    if isinstance(layer, (list, tuple)):
        return Stack(layer)
    return as_sequence_model(layer)


class Repeat(AbstractSequenceModel):
    """`num_layers` layers of one architecture, each with its own weights.

    `make_layer(key)` builds one layer: a sequence model, a per-step module, or a
    list of them (made a `Stack`). It is called on `num_layers` independent keys
    under `eqx.filter_vmap`, so the layers' parameters are stored stacked along a
    leading axis of length `num_layers` and the forward pass is one `lax.scan`
    over layers: the layer is traced and compiled once, not `num_layers` times.
    Each layer must keep the width, `(time, features) -> (time, features)`.

    The carry is the layers' carries stacked along a leading axis of length
    `num_layers`; chunking and reset isolation hold whenever they hold for the
    layer. `Repeat` is the answer to the weight-tying trap of
    `Stack((attention, ffn) * num_layers)`: here no two layers share parameters.

    **Example:**

    ```python
    import jax.random as jr
    from memrl_eqx.nn import FFN, GRUCell, PreNorm, Repeat, Residual, RNN

    def layer(key):
        k1, k2 = jr.split(key)
        gru = RNN(GRUCell(in_features=16, features=16, key=k1))
        return [Residual(PreNorm(gru)), Residual(PreNorm(FFN(features=16, key=k2)))]

    torso = Repeat(layer, num_layers=4, key=jr.key(0))
    ```

    **Arguments:** `make_layer`, `num_layers` (keyword, >= 1), `key` (keyword).
    """

    layers: AbstractSequenceModel
    """The layer with every array stacked along a leading `num_layers` axis."""
    num_layers: int = eqx.field(static=True)

    def __init__(
        self,
        make_layer: Callable[[PRNGKeyArray], Any],
        *,
        num_layers: int,
        key: PRNGKeyArray,
    ):
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"Repeat: `num_layers` must be >= 1; got {num_layers}.")
        keys = jr.split(key, num_layers)
        self.layers = eqx.filter_vmap(lambda k: _as_layer(make_layer(k)))(keys)
        self.num_layers = num_layers

    def layer(self, i: int) -> AbstractSequenceModel:
        """Layer `i` on its own (its slice of the stacked parameters)."""
        arrays, static = eqx.partition(self.layers, eqx.is_array)
        return eqx.combine(jtu.tree_map(lambda a: a[i], arrays), static)

    @property
    def in_features(self) -> int | None:
        """The width of the inputs, if the layer declares it."""
        return getattr(self.layers, "in_features", None)

    def init_carry(self) -> Carry:
        return eqx.filter_vmap(
            lambda layer: layer.init_carry(), axis_size=self.num_layers
        )(self.layers)

    @jax.named_scope("memrl_eqx.nn.Repeat")
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time features"]]:
        arrays, static = eqx.partition(self.layers, eqx.is_array)
        first = eqx.combine(jtu.tree_map(lambda a: a[0], arrays), static)
        first_carry = jtu.tree_map(lambda c: c[0], carry)
        out = eqx.filter_eval_shape(first, first_carry, xs, resets)[1]
        check_keeps_shape("Repeat", xs, out)

        def step(xs, layer_and_carry):
            layer_arrays, layer_carry = layer_and_carry
            layer = eqx.combine(layer_arrays, static)
            layer_carry, ys = layer(layer_carry, xs, resets)
            return ys, layer_carry

        ys, carry = lax.scan(step, xs, (arrays, carry))
        return carry, ys
