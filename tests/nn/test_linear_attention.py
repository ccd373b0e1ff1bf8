"""Linear attention (Katharopoulos et al. 2020): the monoid against causal
kernelised attention computed directly over each episode's past."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._linear_attention import LinearAttentionCell


T = 40
RESETS_AT = (0, 13, 29)
# float32 model (running sums) vs float64 reference (explicit sums over the past):
# measured error ~1e-6 on O(1) outputs, hence 1e-5 relative and absolute.
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _phi(u):
    return np.where(u > 0, u + 1, np.exp(u))  # elu(u) + 1


def _reference(cell, xs, resets):
    """$o_t = \\sum_{s} v_s \\phi(k_s)^\\top \\phi(q_t) / \\sum_s \\phi(k_s)^\\top
    \\phi(q_t)$ per head, over the steps $s \\le t$ of $t$'s episode; then
    RMS norm and the output projection (float64)."""
    h, d = cell.num_heads, cell.head_dim
    xs = _f64(xs)
    q = _phi(xs @ _f64(cell.weight_q).T + _f64(cell.bias_q)).reshape(-1, h, d)
    k = _phi(xs @ _f64(cell.weight_k).T + _f64(cell.bias_k)).reshape(-1, h, d)
    v = (xs @ _f64(cell.weight_v).T + _f64(cell.bias_v)).reshape(-1, h, d)
    episode_start = 0
    ys = []
    for t, reset in enumerate(np.asarray(resets)):
        if reset:
            episode_start = t
        past = slice(episode_start, t + 1)
        scores = np.einsum("shd,hd->sh", k[past], q[t])  # (steps, heads)
        o = np.einsum("sh,shd->hd", scores, v[past])
        o = o / np.maximum(scores.sum(axis=0), cell.eps)[:, None]
        o = o.reshape(-1)
        o = o / np.sqrt(np.mean(o**2) + 1e-6) * _f64(cell.norm_scale)
        ys.append(_f64(cell.weight_out) @ o + _f64(cell.bias_out))
    return np.stack(ys)


def test_reference_recurrence(getkey):
    cell = LinearAttentionCell(
        in_features=3, features=5, num_heads=2, head_dim=4, key=getkey()
    )
    xs = jr.normal(getkey(), (T, 3))
    resets = jnp.zeros(T, bool).at[jnp.array(RESETS_AT)].set(True)
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    np.testing.assert_allclose(ys, _reference(cell, xs, resets), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"head_dim": 0}, "head_dim"),
        ({"features": 0}, "features"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_arguments(kwargs, name, getkey):
    config = dict(in_features=3, features=4, num_heads=2, head_dim=2) | kwargs
    with pytest.raises(ValueError, match=name):
        LinearAttentionCell(**config, key=getkey())
