"""DeltaNet (Yang et al. 2024): the affine-map monoid against the explicit
delta-rule update $S_t = S_{t-1} - \\beta_t (S_{t-1} k_t - v_t) k_t^\\top$."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._delta_net import DeltaNetCell


T = 40
RESETS_AT = (0, 13, 29)
# float32 model (products of d x d matrices in the scan) vs float64 reference
# (the recurrence itself): measured error ~1e-6 on O(1) outputs, hence 1e-5
# relative and absolute.
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _unit(u):
    return u / np.sqrt(np.sum(u**2, axis=-1, keepdims=True) + 1e-6)


def reference(cell, xs, resets, gated):
    """The (gated) delta rule step by step, per head (float64):
    $S_t = \\alpha_t S_{t-1} - \\beta_t (\\alpha_t S_{t-1} k_t - v_t) k_t^\\top$
    ($\\alpha_t = 1$ without the gate), $o_t = S_t q_t$, then RMS norm and the
    output projection. Shared with `test_gated_delta_net.py`."""
    h, d = cell.num_heads, cell.head_dim
    s = np.zeros((h, d, d))
    ys = []
    for x, reset in zip(_f64(xs), np.asarray(resets)):
        if reset:
            s = np.zeros_like(s)
        q = _unit((_f64(cell.weight_q) @ x).reshape(h, d))
        k = _unit((_f64(cell.weight_k) @ x).reshape(h, d))
        v = (_f64(cell.weight_v) @ x).reshape(h, d)
        beta = _sigmoid(_f64(cell.weight_beta) @ x + _f64(cell.bias_beta))
        if gated:
            pre = _f64(cell.weight_alpha) @ x + _f64(cell.bias_alpha)
            alpha = np.exp(-np.logaddexp(0.0, pre))
        else:
            alpha = np.ones(h)
        for i in range(h):
            decayed = alpha[i] * s[i]
            s[i] = decayed - beta[i] * np.outer(decayed @ k[i] - v[i], k[i])
        o = np.einsum("hvk,hk->hv", s, q).reshape(-1)
        o = o / np.sqrt(np.mean(o**2) + 1e-6) * _f64(cell.norm_scale)
        ys.append(_f64(cell.weight_out) @ o + _f64(cell.bias_out))
    return np.stack(ys)


def test_reference_recurrence(getkey):
    cell = DeltaNetCell(
        in_features=3, features=5, num_heads=2, head_dim=4, key=getkey()
    )
    xs = jr.normal(getkey(), (T, 3))
    resets = jnp.zeros(T, bool).at[jnp.array(RESETS_AT)].set(True)
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    expected = reference(cell, xs, resets, gated=False)
    np.testing.assert_allclose(ys, expected, rtol=RTOL, atol=ATOL)


def test_combine_is_composition_in_time_order():
    """`combine(a, b)` applied to a state equals applying `a`'s step and then
    `b`'s: the order of the matrix products matches the recurrence. (Fixed keys:
    the negative check needs two steps that visibly fail to commute.)"""
    k_cell, k_a, k_b, k_s = jr.split(jr.key(0), 4)
    cell = DeltaNetCell(in_features=3, features=2, num_heads=1, head_dim=3, key=k_cell)
    a, b = cell.lift(jr.normal(k_a, (3,))), cell.lift(jr.normal(k_b, (3,)))
    s0 = jr.normal(k_s, (1, 3, 3))
    step = lambda s, e: s @ e[0] + e[1]
    a_b = cell.combine(a, b)
    np.testing.assert_allclose(
        step(s0, a_b), step(step(s0, a), b), rtol=1e-5, atol=1e-6
    )
    # In the other order it would differ (the steps do not commute).
    assert not np.allclose(step(s0, a_b), step(step(s0, b), a), atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_heads": 0}, "num_heads"), ({"head_dim": 0}, "head_dim")],
)
def test_bad_arguments(kwargs, name, getkey):
    config = dict(in_features=3, features=4, num_heads=2, head_dim=2) | kwargs
    with pytest.raises(ValueError, match=name):
        DeltaNetCell(**config, key=getkey())
