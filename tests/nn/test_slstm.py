"""`sLSTMCell` (Beck et al. 2024): the stabilised recurrence equals the paper's
unstabilised equations ($i = e^{\\tilde\\imath}$, $f = \\sigma(\\tilde f)$,
$c = f c + i z$, $n = f n + i$, $h = o\\, c / n$), computed here in float64 with
NumPy, head by head, with the causal convolution written as a sum over the last
`conv_kernel_size` projected inputs of the episode."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._slstm import sLSTMCell

from ..helpers import tree_allclose


T, IN, F, H, HEADS, K = 20, 3, 5, 8, 2, 3
# The cell runs in float32 and the reference in float64: the difference is float32
# rounding through 20 steps, measured at ~1e-6.
RTOL = ATOL = 1e-5


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _reference(cell, xs, resets):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), cell)
    d = H // HEADS

    def blockdiag(weight, v):  # one (d, d) block per head
        return np.concatenate(
            [weight[h] @ v[h * d : (h + 1) * d] for h in range(HEADS)]
        )

    def gate(g, v, h):
        return (
            blockdiag(p.gate_weight[g], v)
            + blockdiag(p.recurrent_weight[g], h)
            + (p.gate_bias[g])
        )

    ys = []
    for x, reset in zip(np.asarray(xs, np.float64), np.asarray(resets)):
        if reset:
            c, n, h = np.zeros(H), np.zeros(H), np.zeros(H)
            past = [np.zeros(H)] * (K - 1)  # zero padding at an episode start
        a = p.weight_in @ x + p.bias_in
        if cell.use_causal_conv:
            window = past + [a]  # oldest first
            conv = sum(p.conv_weight[k] * window[k] for k in range(K)) + p.conv_bias
            a_conv = conv * _sigmoid(conv)  # silu
            past = window[1:]
        else:
            a_conv = a
        i = np.exp(gate(0, a_conv, h))
        f = _sigmoid(gate(1, a_conv, h))
        z = np.tanh(gate(2, a, h))
        o = _sigmoid(gate(3, a, h))
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        heads = h.reshape(HEADS, d)
        normed = (heads - heads.mean(-1, keepdims=True)) / np.sqrt(
            heads.var(-1, keepdims=True) + 1e-5
        )
        ys.append(p.weight_out @ (normed.reshape(-1) * p.norm_weight) + p.bias_out)
    return np.stack(ys)


@pytest.mark.parametrize("use_causal_conv", [True, False])
def test_matches_unstabilised_reference(use_causal_conv, getkey):
    cell = sLSTMCell(
        in_features=IN,
        features=F,
        hidden_dim=H,
        num_heads=HEADS,
        use_causal_conv=use_causal_conv,
        conv_kernel_size=K,
        key=getkey(),
    )
    # R is zero at initialisation: make it (and the biases) random so that the
    # recurrent path is exercised; gates of both signs, input gates up to e^3.
    cell = eqx.tree_at(
        lambda c: (c.recurrent_weight, c.gate_bias, c.norm_weight),
        cell,
        (
            0.5 * jr.normal(getkey(), cell.recurrent_weight.shape),
            jr.normal(getkey(), cell.gate_bias.shape),
            jr.uniform(getkey(), (H,), minval=0.5, maxval=1.5),
        ),
    )
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 7, 9])].set(True)
    rnn = mnn.RNN(cell)
    _, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, resets)
    expected = _reference(cell, xs, resets)
    assert ys.shape == (T, F)
    assert tree_allclose(ys, jnp.asarray(expected, jnp.float32), rtol=RTOL, atol=ATOL)


def test_long_sequence_stays_finite(getkey):
    """Input gates far beyond float32's exp range: the stabiliser keeps every
    exponential at most 1, so 2000 steps stay finite."""
    cell = sLSTMCell(
        in_features=IN, features=F, hidden_dim=H, num_heads=HEADS, key=getkey()
    )
    cell = eqx.tree_at(
        lambda c: (c.recurrent_weight, c.gate_bias),
        cell,
        (
            jr.normal(getkey(), cell.recurrent_weight.shape),
            cell.gate_bias.at[0].set(200.0),
        ),
    )
    xs = 20 * jr.normal(getkey(), (2000, IN))
    rnn = mnn.RNN(cell)
    carry, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, jnp.zeros(2000, bool))
    assert jnp.all(jnp.isfinite(ys))
    assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(carry))
    assert jnp.all(carry.normalizer >= 1)  # n' >= 1 from the first step on


def test_initialisation(getkey):
    cell = sLSTMCell(
        in_features=IN, features=F, hidden_dim=H, num_heads=HEADS, key=getkey()
    )
    d = H // HEADS
    powerlaw = 5 - 12 * (jnp.arange(d) / (d - 1)) ** 0.3
    assert jnp.allclose(cell.gate_bias[1], jnp.tile(powerlaw, HEADS))
    assert jnp.all(cell.gate_bias[jnp.array([0, 2, 3])] == 0)
    assert jnp.all(cell.recurrent_weight == 0)
    carry = cell.init_carry()
    assert carry.conv_window.shape == (3, H)  # conv_kernel_size - 1 = 3 by default


def test_bad_num_heads(getkey):
    with pytest.raises(ValueError, match="num_heads=3"):
        sLSTMCell(in_features=IN, features=F, hidden_dim=H, num_heads=3, key=getkey())
