"""RTRL-wrapped models (exact online gradients): an RTU through `RNN` and an LRU
through `Memoroid`."""

import memrl_eqx.nn as mnn
from memrl_eqx.nn._lru import LRUCell
from memrl_eqx.nn._rtrl import RTRL
from memrl_eqx.nn._rtu import RTUCell

from .zoo_core import IN, OUT


MODELS = {
    "rtrl_rtu": lambda key: RTRL(
        mnn.RNN(RTUCell(in_features=IN, features=OUT, hidden_dim=4, key=key))
    ),
    "rtrl_lru": lambda key: RTRL(
        mnn.Memoroid(LRUCell(in_features=IN, features=OUT, hidden_dim=4, key=key))
    ),
}
