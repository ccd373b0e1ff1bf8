"""Step cells run by `RNN`: sLSTM, SHM, RTU, Elman, IndRNN, MGU and DNC."""

import memrl_eqx.nn as mnn
from memrl_eqx.nn._dnc import DNCCell
from memrl_eqx.nn._elman import ElmanCell
from memrl_eqx.nn._indrnn import IndRNNCell
from memrl_eqx.nn._mgu import MGUCell
from memrl_eqx.nn._rtu import RTUCell
from memrl_eqx.nn._shm import SHMCell
from memrl_eqx.nn._slstm import sLSTMCell

from .zoo_core import IN, OUT


MODELS = {
    "slstm": lambda key: mnn.RNN(
        sLSTMCell(in_features=IN, features=OUT, hidden_dim=8, num_heads=2, key=key)
    ),
    "shm": lambda key: mnn.RNN(
        SHMCell(in_features=IN, features=4, output_features=OUT, num_thetas=8, key=key)
    ),
    "rtu": lambda key: mnn.RNN(
        RTUCell(in_features=IN, features=OUT, hidden_dim=4, key=key)
    ),
    "elman": lambda key: mnn.RNN(ElmanCell(in_features=IN, features=OUT, key=key)),
    "indrnn": lambda key: mnn.RNN(IndRNNCell(in_features=IN, features=OUT, key=key)),
    "mgu": lambda key: mnn.RNN(MGUCell(in_features=IN, features=OUT, key=key)),
    "dnc": lambda key: mnn.RNN(
        DNCCell(
            in_features=IN,
            features=OUT,
            hidden_dim=8,
            memory_size=4,
            word_size=3,
            num_read_heads=2,
            key=key,
        )
    ),
}
