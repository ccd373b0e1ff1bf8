"""SegmentRecurrence: the window it gives the attention, the stop-gradient
memory, and the memory's episode boundaries."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._attention import SelfAttention
from memrl_eqx.nn._positional import ALiBi
from memrl_eqx.nn._segment_recurrence import SegmentRecurrence

from .test_attention import ATOL, reference, RTOL


IN, OUT = 3, 4

_call = eqx.filter_jit(lambda model, *args, **kwargs: model(*args, **kwargs))


def _make(key, *, memory_length, context_length, alibi=True):
    attention = SelfAttention(
        in_features=IN,
        features=OUT,
        num_heads=2,
        context_length=context_length,
        positional_embedding=ALiBi(2) if alibi else None,
        key=key,
    )
    return SegmentRecurrence(attention, memory_length=memory_length, features=IN)


@pytest.mark.parametrize("memory_length, context_length", [(3, 5), (5, 3), (4, 4)])
def test_reference(memory_length, context_length, getkey):
    """In chunks of 8 (longer than memory and context, resets mid-chunk and at
    a chunk start), each query attends to the previous
    min(context_length, memory_length) steps of its episode: the per-query
    loop of test_attention with that window (float32 vs float64: 1e-5)."""
    model = _make(getkey(), memory_length=memory_length, context_length=context_length)
    n = 24
    xs = jr.normal(getkey(), (n, IN))
    resets = jnp.zeros(n, bool).at[jnp.array([5, 16])].set(True)
    carry, ys = model.init_carry(), []
    for start in range(0, n, 8):
        chunk = slice(start, start + 8)
        carry, y = _call(model, carry, xs[chunk], resets[chunk])
        ys.append(y)
    window = min(memory_length, context_length)
    expected = reference(model.module, xs, resets, window, embedding="alibi")
    np.testing.assert_allclose(jnp.concatenate(ys), expected, rtol=RTOL, atol=ATOL)


def _two_calls(model, xs1, xs2):
    """The outputs of a second call, after a first call on `xs1`."""
    carry, _ = model(model.init_carry(), xs1, jnp.zeros(len(xs1), bool))
    _, ys = model(carry, xs2, jnp.zeros(len(xs2), bool))
    return ys


def test_no_gradient_into_the_memory(getkey):
    """A loss on the second call's outputs has an exactly zero gradient with
    respect to the first call's inputs (they reach it only through the
    stop-gradient memory), but not without SegmentRecurrence (the bare
    attention's cache carries the gradient)."""
    model = _make(getkey(), memory_length=4, context_length=4)
    xs1 = jr.normal(getkey(), (4, IN))
    xs2 = jr.normal(getkey(), (3, IN))

    @jax.jit
    def grads(xs1):
        segment = jax.grad(lambda x: jnp.sum(_two_calls(model, x, xs2) ** 2))(xs1)
        bare = jax.grad(lambda x: jnp.sum(_two_calls(model.module, x, xs2) ** 2))(xs1)
        return segment, bare

    segment, bare = grads(xs1)
    assert jnp.all(segment == 0)
    assert jnp.any(bare != 0)


def test_key_value_projections_learn_through_the_memory_keys(getkey):
    """With memory_length = context_length the second call's outputs equal the
    bare attention's (same keys, recomputed from the memory instead of read
    from the cache), and so do the query projection's gradients; the key and
    value projections get more gradient: through the memory keys, which the
    cache holds as constants (float32: 1e-5)."""
    model = _make(getkey(), memory_length=4, context_length=4)
    xs1 = jr.normal(getkey(), (4, IN))
    xs2 = jr.normal(getkey(), (2, IN))
    carry, _ = _call(model, model.init_carry(), xs1, jnp.zeros(4, bool))
    resets = jnp.zeros(2, bool)

    @eqx.filter_jit
    def outputs_and_grads(model, carry):
        def loss(attention, which):
            if which == "segment":
                m = eqx.tree_at(lambda m: m.module, model, attention)
                return m(carry, xs2, resets)[1]
            return attention(carry.attention, xs2, resets)[1]

        results = {}
        for which in ("segment", "bare"):
            f = lambda a: jnp.sum(loss(a, which) ** 2)
            results[which] = (loss(model.module, which), jax.grad(f)(model.module))
        return results

    results = outputs_and_grads(model, carry)
    (ys_segment, g_segment), (ys_bare, g_bare) = results["segment"], results["bare"]
    np.testing.assert_allclose(ys_segment, ys_bare, rtol=RTOL, atol=ATOL)
    for name in ("weight_q", "bias_q", "weight_out"):
        np.testing.assert_allclose(
            getattr(g_segment, name), getattr(g_bare, name), rtol=1e-4, atol=1e-5
        )
    for name in ("weight_k", "weight_v"):
        difference = getattr(g_segment, name) - getattr(g_bare, name)
        assert jnp.max(jnp.abs(difference)) > 1e-3, name


def test_memory_is_cleared_at_resets(getkey):
    """The memory keeps the last memory_length inputs of the episode in
    progress: after a reset, only the steps from it on are valid; the others
    are zeros, as in a fresh run from the reset."""
    model = _make(getkey(), memory_length=5, context_length=3)
    xs = jr.normal(getkey(), (9, IN))
    resets = jnp.zeros(9, bool).at[6].set(True)
    carry, _ = _call(model, model.init_carry(), xs, resets)
    np.testing.assert_array_equal(carry.valid, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(carry.memory[2:], xs[6:])
    np.testing.assert_array_equal(carry.memory[:2], 0)
    fresh, _ = _call(model, model.init_carry(), xs[6:], resets[6:])
    assert jax.tree.all(jax.tree.map(jnp.array_equal, carry, fresh))
    # Without a reset the memory is the last five inputs.
    carry, _ = _call(model, carry, xs, jnp.zeros(9, bool))
    np.testing.assert_array_equal(carry.memory, xs[4:])
    np.testing.assert_array_equal(carry.valid, np.ones(5))


def test_bad_arguments(getkey):
    attention = SelfAttention(
        in_features=IN, features=OUT, num_heads=2, context_length=4, key=getkey()
    )
    gru = mnn.RNN(mnn.GRUCell(in_features=IN, features=OUT, key=getkey()))
    with pytest.raises(ValueError, match="SelfAttention"):
        SegmentRecurrence(gru, memory_length=4, features=IN)
    with pytest.raises(ValueError, match="in_features"):
        SegmentRecurrence(attention, memory_length=4, features=IN + 1)
    with pytest.raises(ValueError, match="memory_length"):
        SegmentRecurrence(attention, memory_length=0, features=IN)
    assert SegmentRecurrence(attention, memory_length=4, features=IN).in_features == IN
