"""Mixtures of experts: recurrent experts with a Switch-style top-1 gate, and
per-step MLP experts with renormalised top-2 weights. The contract compares
carries, so the router's additive statistics must chunk exactly too."""

import jax.random as jr

import memrl_eqx.nn as mnn
from memrl_eqx.nn._moe import MoE, TopKRouter

from .zoo_core import IN, OUT


def _moe_gru(key):
    k1, k2, k3 = jr.split(key, 3)
    experts = [
        mnn.RNN(mnn.GRUCell(in_features=IN, features=OUT, key=k)) for k in (k1, k2)
    ]
    router = TopKRouter(in_features=IN, num_experts=2, k=1, renormalize=False, key=k3)
    return MoE(experts, router)


def _moe_mlp(key):
    keys = jr.split(key, 4)
    experts = [mnn.MLP(in_features=IN, features=(8, OUT), key=k) for k in keys[:3]]
    return MoE(experts, TopKRouter(in_features=IN, num_experts=3, k=2, key=keys[3]))


MODELS = {"moe_gru_top1": _moe_gru, "moe_mlp_top2": _moe_mlp}
