"""Blocks in the shared contract tests: gated GRU layers repeated with `Repeat`,
a post-norm stack, and the GTrXL torso."""

import jax.random as jr

import memrl_eqx.nn as mnn

from .zoo_core import IN, OUT


def _gated_layer(key):
    k1, k2, k3, k4 = jr.split(key, 4)
    gru = mnn.RNN(mnn.GRUCell(in_features=OUT, features=OUT, key=k1))
    return [
        mnn.GatedResidual(mnn.PreNorm(gru), key=k2),
        mnn.GatedResidual(mnn.PreNorm(mnn.FFN(features=OUT, key=k3)), key=k4),
    ]


def _repeat(key):
    k1, k2 = jr.split(key)
    return mnn.Stack(
        [
            mnn.Projection(in_features=IN, features=OUT, key=k1),
            mnn.Repeat(_gated_layer, num_layers=2, key=k2),
        ]
    )


def _post_norm(key):
    k1, k2 = jr.split(key)
    lru = mnn.LRUCell(in_features=IN, features=OUT, hidden_dim=4, key=k1)
    return mnn.Stack(
        [
            mnn.PostNorm(mnn.Memoroid(lru), features=OUT),
            mnn.Residual(mnn.PostNorm(mnn.FFN(features=OUT, key=k2))),
        ]
    )


def _gtrxl(key):
    return mnn.GTrXL(
        in_features=IN,
        features=OUT,
        num_layers=2,
        num_heads=2,
        context_length=3,
        memory_length=4,
        key=key,
    )


MODELS = {
    "repeat_gated_gru_ffn": _repeat,
    "post_norm_lru_ffn": _post_norm,
    "gtrxl": _gtrxl,
}
