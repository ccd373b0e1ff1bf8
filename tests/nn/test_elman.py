"""`ElmanCell`: $h' = \\tanh(W x + U h + b)$, checked against a plain loop."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr

import memrl_eqx.nn as mnn
from memrl_eqx.nn._elman import ElmanCell

from ..helpers import reference_loop, tree_allclose


T, IN, F = 16, 3, 4
# Two float32 evaluations of the same formula, in different orders.
RTOL = ATOL = 1e-5


def test_matches_reference_recurrence(getkey):
    cell = ElmanCell(in_features=IN, features=F, key=getkey())
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 6, 11])].set(True)

    def step(h, x):
        h = jnp.tanh(cell.weight_ih @ x + cell.weight_hh @ h + cell.bias)
        return h, h

    expected = reference_loop(step, jnp.zeros(F), xs, resets)
    rnn = mnn.RNN(cell)
    _, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, resets)
    assert ys.shape == (T, F)
    assert tree_allclose(ys, expected, rtol=RTOL, atol=ATOL)
