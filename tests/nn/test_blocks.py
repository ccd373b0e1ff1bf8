"""Blocks: GatedResidual (GTrXL's gate), PreNorm, PostNorm, Projection, widths."""

import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn

from ..helpers import tree_allclose


F, T = 4, 6


def _sigmoid(v):
    return 1 / (1 + jnp.exp(-v))


def test_gated_residual_is_the_gtrxl_gru_gate(getkey):
    """Against eqs. 9-12 of Parisotto et al. (2020), written out per step."""
    ffn = mnn.FFN(features=F, key=getkey())
    block = mnn.GatedResidual(ffn, gate_bias=1.5, key=getkey())
    xs = jr.normal(getkey(), (T, F))
    _, out = block((), xs, jnp.zeros(T, bool))
    (wr, wz, wg), (ur, uz), ug = block.weight_y, block.weight_x, block.weight_rx
    for t in range(T):
        x = xs[t]
        y = jnp.maximum(ffn(x), 0)
        r = _sigmoid(wr @ y + ur @ x)
        z = _sigmoid(wz @ y + uz @ x - 1.5)
        h = jnp.tanh(wg @ y + ug @ (r * x))
        assert tree_allclose(out[t], (1 - z) * x + z * h, rtol=1e-5, atol=1e-6)


def test_gated_residual_starts_near_the_identity(getkey):
    """With a large gate bias the block passes its input through (z ~ 0)."""
    block = mnn.GatedResidual(
        mnn.FFN(features=F, key=getkey()), gate_bias=20.0, key=getkey()
    )
    xs = jr.normal(getkey(), (T, F))
    _, out = block((), xs, jnp.zeros(T, bool))
    assert tree_allclose(out, xs, rtol=0, atol=1e-6)


def test_gated_residual_refuses_a_width_change(getkey):
    mlp = mnn.MLP(in_features=F, features=(F + 1,), key=getkey())
    block = mnn.GatedResidual(mlp, key=getkey())
    with pytest.raises(ValueError, match="keep the shape"):
        block((), jnp.zeros((T, F)), jnp.zeros(T, bool))


def test_post_norm_normalises_outputs(getkey):
    rnn = mnn.RNN(mnn.GRUCell(in_features=3, features=F, key=getkey()))
    block = mnn.PostNorm(rnn, features=F)
    xs, resets = jr.normal(getkey(), (T, 3)), jnp.zeros(T, bool)
    _, ys = block(block.init_carry(), xs, resets)
    _, raw = rnn(rnn.init_carry(), xs, resets)
    expected = (raw - raw.mean(-1, keepdims=True)) / jnp.sqrt(
        raw.var(-1, keepdims=True) + 1e-5
    )
    assert tree_allclose(ys, expected, rtol=1e-4, atol=1e-5)


def test_pre_norm_normalises_inputs(getkey):
    ident = mnn.SequenceModelWrapper(mnn.Identity())
    block = mnn.PreNorm(ident, features=F)
    xs = 3 + 5 * jr.normal(getkey(), (T, F))
    _, ys = block((), xs, jnp.zeros(T, bool))
    expected = (xs - xs.mean(-1, keepdims=True)) / jnp.sqrt(
        xs.var(-1, keepdims=True) + 1e-5
    )
    assert tree_allclose(ys, expected, rtol=1e-5, atol=1e-5)


def test_widths_are_inferred_through_wrappers(getkey):
    gru = mnn.RNN(mnn.GRUCell(in_features=F, features=F, key=getkey()))
    assert mnn.PreNorm(gru).in_features == F
    assert mnn.Residual(mnn.PreNorm(mnn.FFN(features=F, key=getkey()))).in_features == F
    gated = mnn.GatedResidual(mnn.PreNorm(gru), key=getkey())
    assert gated.in_features == F
    with pytest.raises(ValueError, match="pass `features=`"):
        mnn.PreNorm(mnn.Identity())


def test_projection(getkey):
    proj = mnn.Projection(
        in_features=3, features=5, activation=jax.nn.relu, key=getkey()
    )
    x = jr.normal(getkey(), (3,))
    w, b = proj.linear.weight, proj.linear.bias
    assert tree_allclose(proj(x), jnp.maximum(w @ x + b, 0))
    assert (proj.in_features, proj.features) == (3, 5)
    linear = mnn.Projection(in_features=3, features=5, key=getkey())
    assert tree_allclose(linear(x), linear.linear.weight @ x)
