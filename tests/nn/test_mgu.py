"""`MGUCell` (Zhou et al. 2016), checked against the paper's equations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

import memrl_eqx.nn as mnn
from memrl_eqx.nn._mgu import MGUCell

from ..helpers import reference_loop, tree_allclose


T, IN, F = 16, 3, 4
# Two float32 evaluations of the same formula, in different orders.
RTOL = ATOL = 1e-5


def test_matches_reference_recurrence(getkey):
    cell = MGUCell(in_features=IN, features=F, key=getkey())
    xs = jr.normal(getkey(), (T, IN)) * 2
    resets = jnp.zeros(T, bool).at[jnp.array([5, 12])].set(True)
    (W_f, W_h), (b_f, b_h) = cell.weight_ih, cell.bias
    U_f, U_h = cell.weight_f, cell.weight_h

    def step(h, x):
        f = jax.nn.sigmoid(W_f @ x + U_f @ h + b_f)
        h_tilde = jnp.tanh(W_h @ x + U_h @ (f * h) + b_h)
        h = (1 - f) * h + f * h_tilde
        return h, h

    # Start from a non-zero carry, so that the first episode also tests the gate.
    h0 = jr.normal(getkey(), (F,))
    expected = reference_loop(step, jnp.zeros(F), xs[5:], resets[5:])
    _, first = jax.jit(step)(h0, xs[0])
    rnn = mnn.RNN(cell)
    _, ys = eqx.filter_jit(rnn)(h0, xs, resets)
    assert tree_allclose(ys[0], first, rtol=RTOL, atol=ATOL)
    assert tree_allclose(ys[5:], expected, rtol=RTOL, atol=ATOL)
