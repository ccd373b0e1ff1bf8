"""`Mamba2Cell` (Dao & Gu 2024): paper recurrence, long sequences, init."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._mamba2 import Mamba2Cell

from ..helpers import tree_allclose
from .zoo_windowed_cells import causal_conv_reference


IN, FEATURES, HEADS, HEAD_DIM, STATE = 3, 5, 2, 3, 4


def _cell(key, dt_shift=0.0):
    cell = Mamba2Cell(
        in_features=IN,
        features=FEATURES,
        num_heads=HEADS,
        head_dim=HEAD_DIM,
        state_dim=STATE,
        key=key,
    )
    return eqx.tree_at(lambda c: c.dt_bias, cell, cell.dt_bias + dt_shift)


def _silu(x):
    return x / (1 + np.exp(-x))


def _reference(cell, xs, resets):
    """Mamba-2 written from the paper's recurrence in float64 numpy, one step at
    a time: $h_t = e^{\\Delta_t A} h_{t-1} + \\Delta_t x_t B_t^\\top$,
    $y_t = h_t C_t + D x_t$; a reset restarts from $h = 0$. The convolution
    window is computed from the raw inputs."""
    p = lambda a: np.asarray(a, np.float64)
    heads, head_dim, n = cell.num_heads, cell.head_dim, cell.state_dim
    inner = heads * head_dim
    xs = p(xs)
    xbc = xs @ p(cell.xbc_proj).T
    xbc = _silu(causal_conv_reference(xbc, resets, cell.conv_weight, cell.conv_bias))
    x_conv = xbc[:, :inner].reshape(-1, heads, head_dim)
    b, c = xbc[:, inner : inner + n], xbc[:, inner + n :]
    z = xs @ p(cell.z_proj).T
    dt = np.logaddexp(0.0, xs @ p(cell.dt_proj).T + p(cell.dt_bias))  # softplus
    a = -np.exp(p(cell.A_log))
    ys = []
    for t in range(xs.shape[0]):
        if t == 0 or resets[t]:
            h = np.zeros((heads, head_dim, n))
        h = (
            np.exp(dt[t] * a)[:, None, None] * h
            + dt[t][:, None, None] * x_conv[t][:, :, None] * b[t][None, None, :]
        )
        y = np.einsum("hpn,n->hp", h, c[t]) + p(cell.D)[:, None] * x_conv[t]
        y = y.ravel()
        y = y / np.sqrt(np.mean(y**2) + 1e-5) * p(cell.norm_weight)
        ys.append(p(cell.out_proj) @ (y * _silu(z[t])))
    return np.stack(ys)


@pytest.mark.parametrize("dt_shift", [0.0, 3.0])
def test_matches_paper_recurrence(getkey, dt_shift):
    """The associative scan over a sequence with resets (including an episode
    shorter than the window, and one right at the start) equals the paper's
    step-by-step recurrence, both with the initial step sizes (decays near 1)
    and with larger ones (decays spread over (0, 1)).

    Tolerance: the reference is float64, the model float32 (associative scan).
    1e-5 relative, and 1e-5 absolute times the largest output (as in the mLSTM
    test; here outputs are O(1) and the observed worst case over 40 seeds is
    1e-6 absolute)."""
    cell = _cell(getkey(), dt_shift)
    T = 40
    xs = jr.normal(getkey(), (T, IN))
    resets = np.zeros(T, bool)
    resets[[0, 11, 12, 14, 30]] = True
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, jnp.asarray(resets))
    expected = _reference(cell, xs, resets)
    atol = 1e-5 * max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-5, atol=atol)


def test_long_sequence_with_large_inputs_is_finite(getkey):
    """T = 4096, inputs x10 and x100: outputs and gradients (to the parameters
    and the inputs) stay finite; the summed log decay of a long segment is a
    large negative number, never NaN."""
    model = mnn.Memoroid(_cell(getkey()))
    T = 4096
    xs = jr.normal(getkey(), (T, IN))
    resets = jr.bernoulli(getkey(), 0.001, (T,))

    @eqx.filter_jit
    def loss_and_grad(model_and_xs):
        def loss(model_and_xs):
            model, xs = model_and_xs
            carry, ys = model(model.init_carry(), xs, resets)
            return jnp.mean(ys**2), (carry, ys)

        return eqx.filter_value_and_grad(loss, has_aux=True)(model_and_xs)

    for scale in (10.0, 100.0):
        (_, (carry, ys)), grads = loss_and_grad((model, xs * scale))
        assert jnp.all(jnp.isfinite(ys)), scale
        assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jtu.tree_leaves(carry))
        leaves = jtu.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
        assert all(jnp.all(jnp.isfinite(g)) for g in leaves), scale


def test_operator_is_associative_with_large_inputs(getkey):
    cell = _cell(getkey(), dt_shift=3.0)
    lift = eqx.filter_jit(cell.lift)
    for _ in range(5):
        a, b, c = (lift(jr.normal(getkey(), (cell.window, IN)) * 10) for _ in range(3))
        left = cell.combine(cell.combine(a, b), c)
        right = cell.combine(a, cell.combine(b, c))
        assert tree_allclose(left, right, rtol=1e-5, atol=1e-5)
        e = cell.identity()
        assert tree_allclose(cell.combine(e, a), a, rtol=0, atol=0)
        assert tree_allclose(cell.combine(a, e), a, rtol=0, atol=0)


def test_initialisation(getkey):
    cell = Mamba2Cell(in_features=IN, features=FEATURES, num_heads=64, key=getkey())
    assert cell.window == 4
    dt = jax.nn.softplus(cell.dt_bias)
    assert jnp.all(dt >= 1e-3 * (1 - 1e-4)) and jnp.all(dt <= 0.1 * (1 + 1e-4))
    assert jnp.all(cell.A_log >= 0) and jnp.all(cell.A_log <= math.log(16))
    assert jnp.all(cell.D == 1) and jnp.all(cell.norm_weight == 1)
    state, log_decay = cell.identity()
    assert state.shape == (64, 16, 16) and jnp.all(state == 0)
    assert jnp.all(log_decay == 0)
    # One step decays by exp(dt * A), in (0, 1).
    _, log_decay = eqx.filter_jit(cell.lift)(jnp.zeros((4, IN)))
    assert jnp.all(log_decay < 0)
    np.testing.assert_allclose(log_decay, -dt * jnp.exp(cell.A_log), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["features", "num_heads", "head_dim", "state_dim"])
def test_bad_arguments(getkey, name):
    kwargs = dict(in_features=IN, features=FEATURES) | {name: 0}
    with pytest.raises(ValueError, match=name):
        Mamba2Cell(**kwargs, key=getkey())
