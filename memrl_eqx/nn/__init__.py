"""Sequence models, cells, layers, heads and networks (mirrors `equinox.nn`)."""

from . import heads as heads
from ._attention import AttentionCarry as AttentionCarry, SelfAttention as SelfAttention
from ._auxiliary import (
    AbstractAuxiliaryStatistics as AbstractAuxiliaryStatistics,
    auxiliary_loss as auxiliary_loss,
    clear_auxiliary as clear_auxiliary,
)
from ._cell import AbstractCell as AbstractCell
from ._cnn import CNN as CNN
from ._delta_net import DeltaNetCell as DeltaNetCell
from ._dnc import DNCCell as DNCCell
from ._elman import ElmanCell as ElmanCell
from ._feature_extractor import FeatureExtractor as FeatureExtractor
from ._ffm import FFMCell as FFMCell
from ._ffn import FFN as FFN
from ._gated_delta_net import GatedDeltaNetCell as GatedDeltaNetCell
from ._gated_residual import GatedResidual as GatedResidual
from ._glu import GLU as GLU
from ._gru import GRUCell as GRUCell
from ._gtrxl import GTrXL as GTrXL
from ._indrnn import IndRNNCell as IndRNNCell
from ._layers import Flatten as Flatten, Identity as Identity, OneHot as OneHot
from ._linear import Linear as Linear
from ._linear_attention import LinearAttentionCell as LinearAttentionCell
from ._lru import LRUCell as LRUCell
from ._lstm import LSTMCell as LSTMCell
from ._mamba2 import Mamba2Cell as Mamba2Cell
from ._mamba3 import Mamba3Cell as Mamba3Cell
from ._memoroid import Memoroid as Memoroid
from ._memoroid_cell import AbstractMemoroidCell as AbstractMemoroidCell
from ._mgu import MGUCell as MGUCell
from ._mingru import MinGRUCell as MinGRUCell
from ._mlp import MLP as MLP
from ._mlstm import mLSTMCell as mLSTMCell
from ._moe import (
    MoE as MoE,
    RouterStatistics as RouterStatistics,
    TopKRouter as TopKRouter,
)
from ._network import Network as Network
from ._norm import PostNorm as PostNorm, PreNorm as PreNorm
from ._positional import (
    AbstractPositionalEmbedding as AbstractPositionalEmbedding,
    ALiBi as ALiBi,
    LearnablePositionalEmbedding as LearnablePositionalEmbedding,
    RoPE as RoPE,
)
from ._projection import Projection as Projection
from ._repeat import Repeat as Repeat
from ._residual import Residual as Residual
from ._rl2 import RL2Wrapper as RL2Wrapper
from ._rnn import RNN as RNN
from ._rtrl import RTRL as RTRL
from ._rtu import RTUCell as RTUCell
from ._s5 import S5Cell as S5Cell
from ._segment_recurrence import (
    SegmentRecurrence as SegmentRecurrence,
    SegmentRecurrenceCarry as SegmentRecurrenceCarry,
)
from ._sequence_model import AbstractSequenceModel as AbstractSequenceModel
from ._shm import SHMCell as SHMCell
from ._slstm import sLSTMCell as sLSTMCell
from ._stack import Stack as Stack
from ._timestep import Timestep as Timestep
from ._vit import PatchEmbedding as PatchEmbedding, ViT as ViT
from ._wrapper import (
    as_sequence_model as as_sequence_model,
    SequenceModelWrapper as SequenceModelWrapper,
)
from ._xlstm import xLSTM as xLSTM
