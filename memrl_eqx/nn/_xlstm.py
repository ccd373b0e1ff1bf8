"""`xLSTM`: a stack of mLSTM and sLSTM blocks (Beck et al. 2024)."""

from collections.abc import Sequence

import equinox as eqx
import jax.random as jr
from jaxtyping import PRNGKeyArray

from ._glu import GLU
from ._linear import Linear
from ._memoroid import Memoroid
from ._mlstm import mLSTMCell
from ._norm import PreNorm
from ._residual import Residual
from ._rnn import RNN
from ._slstm import sLSTMCell
from ._stack import Stack


def xLSTM(
    *,
    in_features: int,
    features: int,
    num_blocks: int = 2,
    slstm_blocks: Sequence[int] = (1,),
    num_heads: int = 4,
    key: PRNGKeyArray,
) -> Stack:
    """An xLSTM torso: `num_blocks` residual blocks, each pre-normed.

    - an **mLSTM block** (pre up-projection): `Memoroid(mLSTMCell)` with
      `hidden_dim = 2 * features`, the up- and down-projections being part of the
      cell;
    - an **sLSTM block** (post up-projection), at the indices in `slstm_blocks`:
      `RNN(sLSTMCell)` followed by a residual gated MLP (`GLU`, projection factor
      4/3).

    A linear input projection is added when `in_features != features`, and a
    final layer norm. Every block has its own parameters. The result is a
    `Stack`, so its carry is the tuple of its blocks' carries.

    **Arguments** (keyword only):

    - `in_features`: the width of the inputs;
    - `features`: the width of the blocks and of the outputs;
    - `num_blocks`: the number of blocks (default 2, >= 1);
    - `slstm_blocks`: the indices of the sLSTM blocks, in `0..num_blocks - 1`
      (default `(1,)`); the others are mLSTM blocks;
    - `num_heads`: the heads of every mLSTM and sLSTM cell (default 4);
    - `key`.

    **Returns:** a [`memrl_eqx.nn.Stack`][] mapping `(time, in_features)` to
    `(time, features)`.
    """
    if num_blocks < 1:
        raise ValueError(f"xLSTM: `num_blocks` must be >= 1; got {num_blocks}.")
    slstm_blocks = tuple(slstm_blocks)
    if any(not 0 <= i < num_blocks for i in slstm_blocks):
        raise ValueError(
            f"xLSTM: `slstm_blocks` must index blocks 0..{num_blocks - 1}; "
            f"got {slstm_blocks}."
        )
    keys = jr.split(key, num_blocks + 1)
    layers: list = []
    if in_features != features:
        layers.append(Linear(in_features, features, scale=1.0, key=keys[-1]))
    for i, k in enumerate(keys[:num_blocks]):
        k_cell, k_mlp = jr.split(k)
        if i in slstm_blocks:
            cell = sLSTMCell(
                in_features=features,
                features=features,
                hidden_dim=features,
                num_heads=num_heads,
                key=k_cell,
            )
            layers.append(Residual(PreNorm(RNN(cell), features=features)))
            mlp = GLU(features=features, expansion_factor=4 / 3, key=k_mlp)
            layers.append(Residual(PreNorm(mlp, features=features)))
        else:
            cell = mLSTMCell(
                in_features=features,
                features=features,
                hidden_dim=2 * features,
                num_heads=num_heads,
                key=k_cell,
            )
            layers.append(Residual(PreNorm(Memoroid(cell), features=features)))
    layers.append(eqx.nn.LayerNorm(features))
    return Stack(layers)
