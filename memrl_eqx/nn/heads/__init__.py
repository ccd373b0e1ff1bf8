"""Heads: map a torso's outputs to distributions, values or action values."""

from ._c51 import (
    C51QNetwork as C51QNetwork,
    categorical_projection as categorical_projection,
)
from ._categorical import Categorical as Categorical
from ._continuous_q import (
    ContinuousQNetwork as ContinuousQNetwork,
    TwinContinuousQNetwork as TwinContinuousQNetwork,
)
from ._gaussian import Gaussian as Gaussian, SquashedGaussian as SquashedGaussian
from ._gvf import GVF as GVF, Horde as Horde, HordeOutput as HordeOutput
from ._hl_gauss import (
    hl_gauss as hl_gauss,
    HLGaussVNetwork as HLGaussVNetwork,
    two_hot as two_hot,
)
from ._q import (
    DiscreteQNetwork as DiscreteQNetwork,
    TwinDiscreteQNetwork as TwinDiscreteQNetwork,
)
from ._value import VNetwork as VNetwork
