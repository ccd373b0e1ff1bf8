"""Heads: map a torso's outputs to distributions, values or action values."""

from ._categorical import Categorical as Categorical
from ._q import DiscreteQNetwork as DiscreteQNetwork
from ._value import VNetwork as VNetwork
