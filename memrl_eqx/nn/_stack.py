"""`Stack`: sequence models applied one after another."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


def _shared_parameters(blocks: Sequence) -> tuple[int, int] | None:
    """The first pair of blocks `(i, j)` holding the same parameter array."""
    owner: dict[int, int] = {}
    for j, block in enumerate(blocks):
        for leaf in jtu.tree_leaves(eqx.filter(block, eqx.is_inexact_array)):
            i = owner.setdefault(id(leaf), j)
            if i != j:
                return i, j
    return None


class Stack(AbstractSequenceModel):
    """Applies `blocks` in order; itself a sequence model.

    The carry is the tuple of the blocks' carries, so chunking and reset
    isolation hold for the stack whenever they hold for every block. A per-step
    module (an `MLP`, an `FFN`, a `Projection`, a `LayerNorm`) is accepted as a
    block and wrapped in `SequenceModelWrapper`.

    Every block must have its own parameters. Repeating one instance, as in
    `Stack((attention, ffn) * num_layers)`, would silently tie the weights of all
    the layers, so it is refused unless `share_parameters=True` says that tying
    is intended. Build `num_layers` independent layers from a function of a key:
    `Repeat(make_layer, num_layers=..., key=...)` (compiled once, scanned over
    layers) or `Stack([make_layer(k) for k in jr.split(key, num_layers)])`.

    **Arguments:** `blocks` (a non-empty sequence of sequence models or
    per-step modules, applied first to last; each block's outputs are the next
    one's inputs), `share_parameters` (keyword, default False).

    **Example:** a pre-norm residual GRU layer and feed-forward layer, after a
    projection up to the model width.

    ```python
    import jax.numpy as jnp
    import jax.random as jr
    from memrl_eqx.nn import FFN, GRUCell, PreNorm, Projection, Residual, RNN, Stack

    k1, k2, k3 = jr.split(jr.key(0), 3)
    torso = Stack(
        [
            Projection(in_features=4, features=16, key=k1),
            Residual(PreNorm(RNN(GRUCell(in_features=16, features=16, key=k2)))),
            Residual(PreNorm(FFN(features=16, key=k3))),
        ]
    )
    carry, ys = torso(torso.init_carry(), jnp.ones((5, 4)), jnp.zeros(5, bool))
    assert ys.shape == (5, 16)
    assert len(carry) == 3 and carry[1].shape == (16,)  # the GRU's carry
    ```
    """

    blocks: tuple[AbstractSequenceModel, ...]

    def __init__(self, blocks: Sequence, *, share_parameters: bool = False):
        if isinstance(blocks, eqx.Module) or len(blocks) == 0:
            raise ValueError(
                "Stack: `blocks` must be a non-empty sequence of modules; got "
                f"{type(blocks).__name__}."
            )
        if not share_parameters and (pair := _shared_parameters(blocks)) is not None:
            i, j = pair
            raise ValueError(
                f"Stack: blocks {i} and {j} share parameters (the same "
                f"{type(blocks[j]).__name__} appears twice, as in "
                "`(attention, ffn) * num_layers`), which ties their weights. Build "
                "each layer from its own key, e.g. `Repeat(make_layer, "
                "num_layers=..., key=...)`, or pass `share_parameters=True` if "
                "tying is intended."
            )
        self.blocks = tuple(as_sequence_model(block) for block in blocks)

    @property
    def in_features(self) -> int | None:
        """The width of the inputs, if the first block declares it."""
        return getattr(self.blocks[0], "in_features", None)

    def init_carry(self) -> tuple[Carry, ...]:
        return tuple(block.init_carry() for block in self.blocks)

    @jax.named_scope("memrl_eqx.nn.Stack")
    def __call__(
        self,
        carry: tuple[Carry, ...],
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[tuple[Carry, ...], Float[Array, "time out_features"]]:
        new_carry = []
        for block, block_carry in zip(self.blocks, carry):
            block_carry, xs = block(block_carry, xs, resets)
            new_carry.append(block_carry)
        return tuple(new_carry), xs
