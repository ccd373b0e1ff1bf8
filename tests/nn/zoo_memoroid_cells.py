"""Memoroid cells: S5, MinGRU, FFM, linear attention, DeltaNet and Gated DeltaNet."""

import memrl_eqx.nn as mnn
from memrl_eqx.nn._delta_net import DeltaNetCell
from memrl_eqx.nn._ffm import FFMCell
from memrl_eqx.nn._gated_delta_net import GatedDeltaNetCell
from memrl_eqx.nn._linear_attention import LinearAttentionCell
from memrl_eqx.nn._mingru import MinGRUCell
from memrl_eqx.nn._s5 import S5Cell

from .zoo_core import IN, OUT


_CELLS = {
    "s5": lambda key: S5Cell(in_features=IN, features=OUT, hidden_dim=7, key=key),
    "mingru": lambda key: MinGRUCell(in_features=IN, features=OUT, key=key),
    "ffm": lambda key: FFMCell(
        in_features=IN, features=OUT, memory_size=4, context_size=3, key=key
    ),
    "linear_attention": lambda key: LinearAttentionCell(
        in_features=IN, features=OUT, num_heads=2, head_dim=3, key=key
    ),
    "delta_net": lambda key: DeltaNetCell(
        in_features=IN, features=OUT, num_heads=2, head_dim=3, key=key
    ),
    "gated_delta_net": lambda key: GatedDeltaNetCell(
        in_features=IN, features=OUT, num_heads=2, head_dim=3, key=key
    ),
}


def _memoroid(make_cell, scan):
    return lambda key: mnn.Memoroid(make_cell(key), scan=scan)


# The contract suite already compares each Memoroid's associative scan with its
# sequential fold, so no separate `scan="sequential"` entries (they would double
# the compile time). The bilinear S5 discretisation is tested in `test_s5.py`.
MODELS = {name: _memoroid(make, "associative") for name, make in _CELLS.items()}
