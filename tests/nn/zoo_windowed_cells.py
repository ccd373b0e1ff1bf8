"""The windowed Memoroid cells: mLSTM and Mamba2 (a causal convolution over an
input window) and Mamba3 (its two-tap update reads the previous input)."""

import equinox as eqx
import jax.random as jr

import memrl_eqx.nn as mnn
from memrl_eqx.nn._mamba2 import Mamba2Cell
from memrl_eqx.nn._mamba3 import Mamba3Cell
from memrl_eqx.nn._mlstm import mLSTMCell

from .zoo_core import IN, OUT


def random_gates(cell: mLSTMCell, key, scale: float = 1.0) -> mLSTMCell:
    """`cell` with random input- and forget-gate weights.

    The xLSTM initialisation zeroes them, which makes the gates independent of
    the input; random weights exercise the data-dependent gates and the
    max-log stabiliser (differing running maxima across combined segments).
    """
    k1, k2 = jr.split(key)
    shape = cell.igate_weight.shape
    return eqx.tree_at(
        lambda c: (c.igate_weight, c.fgate_weight),
        cell,
        (jr.normal(k1, shape) * scale, jr.normal(k2, shape) * scale),
    )


def make_mlstm(key, scan="associative"):
    k1, k2 = jr.split(key)
    cell = mLSTMCell(in_features=IN, features=OUT, hidden_dim=8, num_heads=2, key=k1)
    return mnn.Memoroid(random_gates(cell, k2), scan=scan)


def make_mamba2(key, scan="associative"):
    cell = Mamba2Cell(
        in_features=IN, features=OUT, num_heads=2, head_dim=3, state_dim=4, key=key
    )
    return mnn.Memoroid(cell, scan=scan)


def make_mamba3(key, scan="associative"):
    cell = Mamba3Cell(
        in_features=IN, features=OUT, num_heads=2, head_dim=3, state_dim=4, key=key
    )
    return mnn.Memoroid(cell, scan=scan)


MODELS = {"mlstm": make_mlstm, "mamba2": make_mamba2, "mamba3": make_mamba3}


def causal_conv_reference(seq, resets, weight, bias):
    """A causal depthwise convolution written from its definition (numpy):
    `out[t] = bias + sum_j weight[j] * seq[t - K + 1 + j]`, oldest tap first, with
    every input from before the episode start of step `t` (the latest reset at or
    before `t`, or the start of the sequence) taken as zero."""
    import numpy as np

    seq, weight, bias = (np.asarray(a, np.float64) for a in (seq, weight, bias))
    kernel = weight.shape[0]
    out = np.zeros_like(seq)
    start = 0
    for t in range(seq.shape[0]):
        if resets[t]:
            start = t
        out[t] = bias
        for j in range(kernel):
            source = t - kernel + 1 + j
            if source >= start:
                out[t] += weight[j] * seq[source]
    return out
