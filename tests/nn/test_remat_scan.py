"""`remat_scan`: a chunk-rematerialised `lax.scan` with the same values and
gradients as the plain one."""

import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._misc import remat_scan

from ..helpers import tree_allclose


def _step(w, carry, x):
    carry = jnp.tanh(w @ carry + x)
    return carry, carry.sum()


@pytest.mark.parametrize("length, chunk_size", [(37, 8), (37, None), (5, 8), (64, 8)])
def test_equals_lax_scan_with_gradients(length, chunk_size, getkey):
    w = jr.normal(getkey(), (4, 4)) / 2
    carry = jr.normal(getkey(), (4,))
    xs = jr.normal(getkey(), (length, 4))

    def run(scan, w, carry, xs):
        final, ys = scan(lambda c, x: _step(w, c, x), carry, xs)
        return jnp.sum(final**2) + jnp.sum(jnp.sin(ys)), (final, ys)

    plain = lambda step, c, xs: lax.scan(step, c, xs)
    chunked = lambda step, c, xs: remat_scan(step, c, xs, chunk_size)
    grad = lambda scan: jax.jit(
        jax.grad(lambda *a: run(scan, *a), argnums=(0, 1, 2), has_aux=True)
    )(w, carry, xs)
    (g1, (c1, y1)), (g2, (c2, y2)) = grad(plain), grad(chunked)
    assert y2.shape == (length,)
    assert tree_allclose((c1, y1), (c2, y2), rtol=1e-6, atol=1e-6)
    assert tree_allclose(g1, g2, rtol=1e-5, atol=1e-6)


def test_a_matrix_carry_rnn_equals_its_plain_scan(getkey):
    """An SHM memory of 40 x 40 numbers is over `RNN`'s threshold, so `RNN`
    rematerialises it; outputs and gradients equal a plain `lax.scan` over the
    same cell (70 steps with resets: chunks of 8, 2 padding steps)."""
    cell = mnn.SHMCell(in_features=3, features=40, output_features=5, key=getkey())
    model = mnn.RNN(cell)
    T = 70
    xs = jr.normal(getkey(), (T, 3))
    resets = jr.bernoulli(getkey(), 0.1, (T,))

    def reference(cell, carry, xs, resets):
        initial = cell.init_carry()

        def step(carry, inputs):
            x, reset = inputs
            carry = jax.tree.map(lambda i, c: jnp.where(reset, i, c), initial, carry)
            return cell.recurrence(carry, cell.input_projection(x))

        return lax.scan(step, carry, (xs, resets))

    def loss(run, cell):
        _, ys = run(cell, cell.init_carry(), xs, resets)
        return jnp.mean(ys**2), ys

    via_rnn = lambda cell, *a: mnn.RNN(cell)(*a)
    assert sum(x.size for x in jax.tree.leaves(model.init_carry())) > 1024
    g1, y1 = jax.jit(jax.grad(lambda c: loss(reference, c), has_aux=True))(cell)
    g2, y2 = jax.jit(jax.grad(lambda c: loss(via_rnn, c), has_aux=True))(cell)
    assert tree_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    assert tree_allclose(g1, g2, rtol=1e-4, atol=1e-6)
