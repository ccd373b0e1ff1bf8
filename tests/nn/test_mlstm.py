"""`mLSTMCell` (xLSTM, Beck et al. 2024): paper recurrence, long sequences, init."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._mlstm import mLSTMCell

from ..helpers import tree_allclose
from .zoo_windowed_cells import causal_conv_reference, random_gates


IN, FEATURES, HIDDEN, HEADS = 3, 5, 8, 2


def _cell(key, gate_scale=1.0):
    k1, k2 = jr.split(key)
    cell = mLSTMCell(
        in_features=IN, features=FEATURES, hidden_dim=HIDDEN, num_heads=HEADS, key=k1
    )
    return random_gates(cell, k2, gate_scale)


def _silu(x):
    return x / (1 + np.exp(-x))


def _reference(cell, xs, resets):
    """The mLSTM written from the xLSTM paper's stabilised step equations, in
    float64 numpy, one step at a time; a reset restarts from C = 0, n = 0,
    m = -inf. The convolution window is computed from the raw inputs."""
    p = lambda a: np.asarray(a, np.float64)
    heads, d = cell.num_heads, cell.hidden_dim // cell.num_heads
    xs = p(xs)
    x_up = xs @ p(cell.up_x).T
    z = xs @ p(cell.up_z).T
    u = _silu(causal_conv_reference(x_up, resets, cell.conv_weight, cell.conv_bias))
    ys = []
    for t in range(xs.shape[0]):
        if t == 0 or resets[t]:
            memory = np.zeros((heads, d, d))
            norm = np.zeros((heads, d))
            m = np.full((heads,), -np.inf)
        q = np.einsum("hij,hj->hi", p(cell.q_weight), u[t].reshape(heads, d))
        k = np.einsum("hij,hj->hi", p(cell.k_weight), u[t].reshape(heads, d))
        v = np.einsum("hij,hj->hi", p(cell.v_weight), x_up[t].reshape(heads, d))
        qkv = np.concatenate([q.ravel(), k.ravel(), v.ravel()])
        i_pre = p(cell.igate_weight) @ qkv + p(cell.igate_bias)
        f_pre = p(cell.fgate_weight) @ qkv + p(cell.fgate_bias)
        log_f = -np.logaddexp(0.0, -f_pre)  # log sigmoid
        m_new = np.maximum(log_f + m, i_pre)
        i_gate = np.exp(i_pre - m_new)
        f_gate = np.exp(log_f + m - m_new)
        k = k / np.sqrt(d)
        memory = (
            f_gate[:, None, None] * memory
            + i_gate[:, None, None] * v[:, :, None] * k[:, None, :]
        )
        norm = f_gate[:, None] * norm + i_gate[:, None] * k
        m = m_new
        denominator = np.maximum(np.abs(np.sum(norm * q, -1)), np.exp(-m)) + 1e-6
        h = np.einsum("hij,hj->hi", memory, q) / denominator[:, None]
        h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
        h = h.ravel() * p(cell.norm_weight) + p(cell.skip) * u[t]
        ys.append(p(cell.down) @ (h * _silu(z[t])))
    return np.stack(ys)


@pytest.mark.parametrize("input_scale", [1.0, 4.0])
def test_matches_paper_recurrence(getkey, input_scale):
    """The associative scan over a sequence with resets (including an episode
    shorter than the window, and one right at the start) equals the paper's
    step-by-step recurrence, with data-dependent gates (running maxima that
    differ between heads and segments).

    Tolerance: the reference is float64, the model float32 (associative scan).
    1e-5 relative, and 1e-5 absolute *times the largest output*: an output is a
    sum of terms as large as the largest outputs (~35 with inputs x4), so a
    component that cancels to a small value still carries their float32
    rounding (observed worst case over 40 seeds: 1.2e-6 of the largest output)."""
    cell = _cell(getkey())
    T = 40
    xs = jr.normal(getkey(), (T, IN)) * input_scale
    resets = np.zeros(T, bool)
    resets[[0, 11, 12, 14, 30]] = True
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, jnp.asarray(resets))
    expected = _reference(cell, xs, resets)
    atol = 1e-5 * max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-5, atol=atol)


def test_long_sequence_with_large_inputs_is_finite(getkey):
    """T = 4096, inputs x10 and x100, data-dependent gates: outputs and gradients
    (to the parameters and the inputs) stay finite."""
    model = mnn.Memoroid(_cell(getkey(), gate_scale=3.0))
    T = 4096
    xs = jr.normal(getkey(), (T, IN))
    resets = jr.bernoulli(getkey(), 0.001, (T,))

    @eqx.filter_jit
    def loss_and_grad(model_and_xs):
        def loss(model_and_xs):
            model, xs = model_and_xs
            _, ys = model(model.init_carry(), xs, resets)
            return jnp.mean(ys**2), ys

        return eqx.filter_value_and_grad(loss, has_aux=True)(model_and_xs)

    for scale in (10.0, 100.0):
        (_, ys), grads = loss_and_grad((model, xs * scale))
        assert jnp.all(jnp.isfinite(ys)), scale
        leaves = jtu.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
        assert all(jnp.all(jnp.isfinite(g)) for g in leaves), scale


def test_operator_is_associative_with_large_inputs(getkey):
    """The max-log stabilised operator is associative to float32 tolerance when
    the segments' running maxima differ widely (large, data-dependent gates)."""
    cell = _cell(getkey(), gate_scale=3.0)
    lift = eqx.filter_jit(cell.lift)
    for _ in range(5):
        a, b, c = (lift(jr.normal(getkey(), (cell.window, IN)) * 10) for _ in range(3))
        left = cell.combine(cell.combine(a, b), c)
        right = cell.combine(a, cell.combine(b, c))
        assert tree_allclose(left, right, rtol=1e-5, atol=1e-5)
        e = cell.identity()
        assert tree_allclose(cell.combine(e, a), a, rtol=1e-6, atol=0)
        assert tree_allclose(cell.combine(a, e), a, rtol=1e-6, atol=0)


def test_initialisation(getkey):
    cell = mLSTMCell(
        in_features=IN, features=FEATURES, hidden_dim=24, num_heads=4, key=getkey()
    )
    assert cell.window == 4 and cell.head_dim == 6
    assert jnp.all(cell.igate_weight == 0) and jnp.all(cell.fgate_weight == 0)
    np.testing.assert_allclose(cell.fgate_bias, [3.0, 4.0, 5.0, 6.0], rtol=1e-6)
    assert jnp.all(cell.skip == 1) and jnp.all(cell.norm_weight == 1)
    # Identity: zero memory and normaliser, a finite "no history" max-log.
    memory, norm, log_f, m = cell.identity()
    assert memory.shape == (4, 6, 6) and norm.shape == (4, 6)
    assert jnp.all(memory == 0) and jnp.all(norm == 0) and jnp.all(log_f == 0)
    assert jnp.all(jnp.isfinite(m)) and jnp.all(m < -1e29)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(hidden_dim=10, num_heads=4), "hidden_dim"),
        (dict(hidden_dim=0, num_heads=4), "hidden_dim"),
        (dict(hidden_dim=8, num_heads=0), "num_heads"),
        (dict(hidden_dim=8, features=0), "features"),
    ],
)
def test_bad_arguments(getkey, kwargs, name):
    kwargs = dict(in_features=IN, features=FEATURES) | kwargs
    with pytest.raises(ValueError, match=name):
        mLSTMCell(**kwargs, key=getkey())
