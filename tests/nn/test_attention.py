"""SelfAttention against a per-query loop from the equations; the window, the
episode mask and the positional embeddings under chunking."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from memrl_eqx.nn._attention import SelfAttention
from memrl_eqx.nn._positional import ALiBi, RoPE


IN, OUT = 3, 4
T = 20
RESETS_AT = (7, 15)
# float32 model against a float64 reference: softmax-weighted sums of O(1)
# values; measured error ~1e-6 (RoPE angles up to ~25 rad add a few 1e-7), so
# 1e-5 relative and absolute.
RTOL, ATOL = 1e-5, 1e-5

_call = eqx.filter_jit(lambda model, *args, **kwargs: model(*args, **kwargs))


def _f64(a):
    return np.asarray(a, np.float64)


def _rope_reference(x, position, base=10000.0):
    """Rotate the pairs $(x_{2i}, x_{2i+1})$ as complex numbers by
    $e^{i p \\theta_i}$, $\\theta_i = \\text{base}^{-2i/d}$ (Su et al. 2021)."""
    d = x.shape[-1]
    theta = base ** (-np.arange(d // 2) * 2.0 / d)
    z = (x[0::2] + 1j * x[1::2]) * np.exp(1j * position * theta)
    out = np.empty(d)
    out[0::2], out[1::2] = z.real, z.imag
    return out


def reference(attn, xs, resets, window, embedding=None):
    """Per query $t$ and head $h$: softmax over the keys $s$ with
    $\\max(e_t, t - w) \\le s \\le t$ ($e_t$ the latest episode start at or
    before $t$, $w$ the window) of $q_t \\cdot k_s / \\sqrt d$ (rotated by the
    absolute positions $t$, $s$ for RoPE; $- m_h (t - s)$ with
    $m_h = 2^{-8h/H}$ added for ALiBi), weighting $v_s$; heads concatenated
    and projected. float64, from a fresh carry (nothing before step 0)."""
    h_, d = attn.num_heads, attn.head_dim
    xs = _f64(xs)

    def project(w, b):
        return (xs @ _f64(w).T + _f64(b)).reshape(len(xs), h_, d)

    q = project(attn.weight_q, attn.bias_q)
    k = project(attn.weight_k, attn.bias_k)
    v = project(attn.weight_v, attn.bias_v)
    slopes = 2.0 ** (-8.0 * np.arange(1, h_ + 1) / h_)
    start, ys = 0, []
    for t in range(len(xs)):
        if resets[t]:
            start = t
        keys = range(max(start, t - window), t + 1)
        o = np.zeros((h_, d))
        for h in range(h_):
            logits = []
            for s in keys:
                qh, kh = q[t, h], k[s, h]
                if embedding == "rope":
                    qh, kh = _rope_reference(qh, t), _rope_reference(kh, s)
                logit = qh @ kh / math.sqrt(d)
                if embedding == "alibi":
                    logit -= slopes[h] * (t - s)
                logits.append(logit)
            w = np.exp(np.array(logits) - max(logits))
            w /= w.sum()
            o[h] = sum(w_s * v[s, h] for w_s, s in zip(w, keys))
        ys.append(_f64(attn.weight_out) @ o.reshape(-1) + _f64(attn.bias_out))
    return np.stack(ys)


def _make(key, embedding=None, *, num_heads=2, head_dim=4, context_length=4):
    positional = {None: None, "rope": RoPE(), "alibi": ALiBi(num_heads)}[embedding]
    return SelfAttention(
        in_features=IN,
        features=OUT,
        num_heads=num_heads,
        head_dim=head_dim,
        context_length=context_length,
        positional_embedding=positional,
        key=key,
    )


def _inputs(key, resets_at=RESETS_AT, length=T):
    xs = jr.normal(key, (length, IN))
    resets = jnp.zeros(length, bool).at[jnp.array(resets_at, jnp.int32)].set(True)
    return xs, resets


def _run_in_chunks(model, xs, resets, lengths, carry=None):
    carry = model.init_carry() if carry is None else carry
    ys, start = [], 0
    for n in lengths:
        carry, y = _call(model, carry, xs[start : start + n], resets[start : start + n])
        ys.append(y)
        start += n
    assert start == len(xs)
    return carry, jnp.concatenate(ys)


@pytest.mark.parametrize("embedding", [None, "rope", "alibi"])
def test_reference(embedding, getkey):
    """Whole sequence (T = 20 > context_length = 4, resets at 7 and 15) and two
    chunks (9 + 11, each longer than the context and reset mid-chunk) both
    equal the per-query loop."""
    model = _make(getkey(), embedding)
    xs, resets = _inputs(getkey())
    expected = reference(model, xs, resets, window=4, embedding=embedding)
    _, whole = _call(model, model.init_carry(), xs, resets)
    np.testing.assert_allclose(whole, expected, rtol=RTOL, atol=ATOL)
    _, chunked = _run_in_chunks(model, xs, resets, (9, 11))
    np.testing.assert_allclose(chunked, expected, rtol=RTOL, atol=ATOL)


def test_rope_chunked_equals_whole_equals_step_by_step(getkey):
    """The Flax original rotated cached keys twice (chunked and stepped outputs
    off by ~1.5 from the whole sequence); here all three agree to float32."""
    model = _make(getkey(), "rope", context_length=16)
    xs, resets = _inputs(getkey(), resets_at=(11,))
    _, whole = _call(model, model.init_carry(), xs, resets)
    _, chunked = _run_in_chunks(model, xs, resets, (6, 6, 8))
    _, stepped = _run_in_chunks(model, xs, resets, (1,) * T)
    np.testing.assert_allclose(chunked, whole, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(stepped, whole, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("embedding", ["rope", "alibi"])
def test_logits_depend_only_on_relative_positions(embedding, getkey):
    """Shifting every query and key position by the same amount leaves the
    logits unchanged (float32: angles up to ~60 rad carry ~1e-5 rounding,
    hence 1e-4 on O(1) logits)."""
    h, d = 2, 4
    positional = RoPE() if embedding == "rope" else ALiBi(h)
    q = jr.normal(getkey(), (5, h, d))
    k = jr.normal(getkey(), (9, h, d))
    q_pos = jnp.arange(4, 9, dtype=jnp.int32)
    k_pos = jnp.arange(9, dtype=jnp.int32)

    def logits(shift):
        q2, k2, bias = positional(q, k, q_pos + shift, k_pos + shift)
        out = jnp.einsum("thd,shd->hts", q2, k2)
        return out if bias is None else out + bias

    logits = jax.jit(logits)
    for shift in (1, 17, 50):
        np.testing.assert_allclose(logits(shift), logits(0), rtol=1e-4, atol=1e-4)


def test_outputs_ignore_where_the_window_starts(getkey):
    """The model-level version: with a memory of 10 empty steps the window's
    positions are shifted by 6 against the bare cache of 4 slots (both windows
    4 steps), and the outputs agree."""
    model = _make(getkey(), "rope")
    xs, resets = _inputs(getkey())
    _, bare = _call(model, model.init_carry(), xs, resets)
    memory = (jnp.zeros((10, IN)), jnp.zeros(10, bool))
    _, shifted = _call(model, model.init_carry(), xs, resets, memory=memory)
    np.testing.assert_allclose(shifted, bare, rtol=RTOL, atol=ATOL)


def test_window_and_episode_mask(getkey):
    """Output t depends on input s exactly when s is among the context_length
    steps before t (or t itself) in t's episode: the gradient is exactly zero
    elsewhere (masked keys get zero weight)."""
    model = _make(getkey(), "alibi", context_length=3)
    xs, resets = _inputs(getkey(), resets_at=(8,), length=14)
    jacobian = jax.jit(
        jax.jacrev(lambda x: jnp.sum(model(model.init_carry(), x, resets)[1], 1))
    )(xs)
    depends = np.asarray(jnp.any(jacobian != 0, axis=-1))  # (t, s)
    t, s = np.meshgrid(np.arange(14), np.arange(14), indexing="ij")
    episode = np.cumsum(np.asarray(resets))
    expected = (s <= t) & (t - s <= 3) & (episode[s] == episode[t])
    np.testing.assert_array_equal(depends, expected)


def test_invalid_cache_slots_are_ignored(getkey):
    """Garbage in invalid cache slots changes nothing (exactly) and gets an
    exactly zero gradient; valid slots are read."""
    model = _make(getkey(), "rope")
    xs, resets = _inputs(getkey(), resets_at=(), length=3)
    carry = model.init_carry()
    garbage = carry._replace(
        keys=100 * jr.normal(getkey(), carry.keys.shape),
        values=100 * jr.normal(getkey(), carry.values.shape),
        positions=jnp.full(4, 7.0),
    )
    _, clean = _call(model, carry, xs, resets)
    _, dirty = _call(model, garbage, xs, resets)
    assert jnp.array_equal(clean, dirty)

    def loss(cache):
        return jnp.sum(model(cache, xs, resets)[1] ** 2)

    grad = jax.jit(jax.grad(loss))
    grads = grad(garbage)
    assert jnp.all(grads.keys == 0) and jnp.all(grads.values == 0)
    # Marking the last two slots valid makes the first queries read them.
    valid = garbage._replace(valid=jnp.array([0.0, 0, 1, 1]))
    grads = grad(valid)
    assert jnp.all(grads.values[:2] == 0) and jnp.all(grads.values[2:] != 0)


def test_carry_after_a_reset_is_a_fresh_carry(getkey):
    """The cache holds the last context_length steps of the episode in
    progress, with their step counts, and zeros elsewhere: after a reset it
    equals the cache of a fresh run from the reset."""
    model = _make(getkey(), None, context_length=6)
    xs, resets = _inputs(getkey(), resets_at=(9,), length=12)
    carry, _ = _call(model, model.init_carry(), xs, resets)
    fresh, _ = _call(model, model.init_carry(), xs[9:], resets[9:])
    assert jax.tree.all(jax.tree.map(jnp.array_equal, carry, fresh))
    np.testing.assert_array_equal(carry.valid, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(carry.positions, [0, 0, 0, 0, 1, 2])
    # Continuing the episode: positions count on across calls.
    carry, _ = _call(model, carry, xs[:3], jnp.zeros(3, bool))
    np.testing.assert_array_equal(carry.positions, [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(carry.valid, np.ones(6))


def test_memory_argument_is_checked(getkey):
    model = _make(getkey())
    xs, resets = _inputs(getkey(), resets_at=(), length=3)
    memory = (jnp.zeros((4, IN)), jnp.ones(5, bool))
    # Caught by the test suite's jaxtyping hook, else by SelfAttention itself.
    with pytest.raises((ValueError, TypeCheckError), match="memory"):
        model(model.init_carry(), xs, resets, memory=memory)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(features=6, num_heads=4), "divisible"),
        (dict(head_dim=3, positional_embedding=RoPE()), "even"),
        (dict(features=7, num_heads=1, positional_embedding=RoPE()), "even"),
        (dict(num_heads=2, positional_embedding=ALiBi(4)), "num_heads"),
        (dict(positional_embedding=lambda *a: a), "positional_embedding"),
        (dict(context_length=0), "context_length"),
        (dict(num_heads=0), "num_heads"),
        (dict(head_dim=0), "head_dim"),
    ],
)
def test_bad_arguments(kwargs, match, getkey):
    config = dict(in_features=IN, features=4, num_heads=2, context_length=4) | kwargs
    # A wrong type may be caught first by the test suite's jaxtyping hook.
    with pytest.raises((ValueError, TypeCheckError), match=match):
        SelfAttention(**config, key=getkey())
