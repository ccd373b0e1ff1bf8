"""Adapters that present other JAX suites through gymnax's `Environment` interface.

Each backend is an optional extra, imported only when one of its ids is made.
"""

from .._adapter import (
    AbstractAdapter as AbstractAdapter,
    AdapterState as AdapterState,
    to_gymnax_space as to_gymnax_space,
)
from ._brax import BraxAdapter as BraxAdapter
from ._gxm import GxmAdapter as GxmAdapter
from ._gymnax_like import GymnaxLikeAdapter as GymnaxLikeAdapter
from ._jaxmarl import MultiAgentAdapter as MultiAgentAdapter
from ._navix import NavixAdapter as NavixAdapter
from ._xminigrid import XMinigridAdapter as XMinigridAdapter
