"""minGRU (Feng et al. 2024): the log-space monoid against the paper's
linear-space recurrence, finiteness over long sequences, and NaN-free gradients
at the $-\\infty$ identity."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._mingru import MinGRUCell


T = 40
RESETS_AT = (0, 13, 29)
# float32 model vs float64 reference: the log-space form rounds each step at
# float32 precision (relative ~1e-7 per step, measured max error ~1e-6 on
# outputs of size O(1)), hence 1e-5 relative and absolute.
RTOL, ATOL = 1e-5, 1e-5


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _reference(cell, xs, resets):
    """$h_t = (1 - z_t) h_{t-1} + z_t g(\\tilde h_t)$, $z_t = \\sigma(W_z x_t)$,
    $\\tilde h_t = W_h x_t$, $h_0 = 0$, in linear space (float64)."""
    w_z = np.asarray(cell.weight_z, np.float64)
    w_h = np.asarray(cell.weight_h, np.float64)
    h = np.zeros(cell.features)
    ys = []
    for x, reset in zip(np.asarray(xs, np.float64), np.asarray(resets)):
        if reset:
            h = np.zeros_like(h)
        z = _sigmoid(w_z @ x)
        h_tilde = w_h @ x
        g = np.where(h_tilde >= 0, h_tilde + 0.5, _sigmoid(h_tilde))
        h = (1 - z) * h + z * g
        ys.append(h)
    return np.stack(ys)


def test_reference_recurrence(getkey):
    cell = MinGRUCell(in_features=3, features=5, key=getkey())
    xs = jr.normal(getkey(), (T, 3)) * 2
    resets = jnp.zeros(T, bool).at[jnp.array(RESETS_AT)].set(True)
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    np.testing.assert_allclose(ys, _reference(cell, xs, resets), rtol=RTOL, atol=ATOL)
    assert jnp.all(ys >= 0)


def test_long_sequence_stays_finite(getkey):
    """T = 4096 steps of large inputs (x10), no resets: the log-space scan stays
    finite, and so do the gradients (taken through the sequential fold of the
    same operator, which compiles much faster than the associative scan's)."""
    cell = MinGRUCell(in_features=3, features=4, key=getkey())
    xs = jr.normal(getkey(), (4096, 3)) * 10
    resets = jnp.zeros(4096, bool)
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    assert jnp.all(jnp.isfinite(ys))

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(model):
        _, ys = model(model.init_carry(), xs, resets)
        return jnp.mean(ys)

    grads = grad(mnn.Memoroid(cell, scan="sequential"))
    assert all(jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads))


def test_identity_has_finite_gradients(getkey):
    """The identity's log-state is $-\\infty$; combining with it, even with itself,
    has finite (zero) gradients, so a zero cotangent never turns into NaN."""
    cell = MinGRUCell(in_features=3, features=4, key=getkey())
    e = cell.identity()
    assert jnp.all(e[0] == -jnp.inf)

    def through_identity(log_state, log_decay):
        out = cell.combine((log_state, log_decay), (log_state, log_decay))
        return jnp.sum(jnp.where(jnp.isfinite(out[0]), out[0], 0.0)) + jnp.sum(out[1])

    g_state, g_decay = jax.grad(through_identity, argnums=(0, 1))(*e)
    assert jnp.all(g_state == 0) and jnp.all(jnp.isfinite(g_decay))

    x = jr.normal(getkey(), (3,))

    def from_identity(x):
        return jnp.sum(cell.read(cell.combine(e, cell.lift(x)), x))

    assert jnp.all(jnp.isfinite(jax.grad(from_identity)(x)))


@pytest.mark.parametrize("name", ["in_features", "features"])
def test_bad_arguments(name, getkey):
    config = {"in_features": 3, "features": 4, name: 0}
    with pytest.raises(ValueError, match=name):
        MinGRUCell(**config, key=getkey())
