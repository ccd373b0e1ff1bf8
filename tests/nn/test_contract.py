"""The sequence-model contract of DESIGN.md, checked for every model."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import pytest
from jaxtyping import TypeCheckError

import memrl_eqx.nn as mnn

from ..helpers import tree_allclose, tree_max_abs_diff
from .models import IN, MEMOROID_MODELS, SEQUENCE_MODELS


T = 12
# float32 tolerance for comparing two orders of the same float32 computation.
RTOL, ATOL = 1e-5, 1e-5

models = pytest.mark.parametrize("name", sorted(SEQUENCE_MODELS))


# The model is an argument, not a jitted attribute (equinox warns against the
# latter): one compiled function, cached by the model's structure.
_call = eqx.filter_jit(lambda model, *args: model(*args))


def _jit(model):
    """The model, called under `eqx.filter_jit` (eager dispatch is slow)."""
    return lambda *args: _call(model, *args)


def _inputs(key, resets_at=(4, 9)):
    xs = jr.normal(key, (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array(resets_at)].set(True)
    return xs, resets


def _random_carry(model, key):
    """A carry of the right structure with random values (a mid-episode carry)."""
    carry = model.init_carry()
    leaves, treedef = jtu.tree_flatten(carry)
    keys = jr.split(key, max(len(leaves), 1))
    new = []
    for k, leaf in zip(keys, leaves):
        if jnp.iscomplexobj(leaf):
            re, im = jr.normal(k, (2,) + leaf.shape)
            new.append(jax.lax.complex(re, im).astype(leaf.dtype) * 0.5)
        else:
            new.append(jr.normal(k, leaf.shape, leaf.dtype))
    return jtu.tree_unflatten(treedef, new)


# Split points: both ends, at a reset (4) and mid-episode (6). With the
# one-step-at-a-time test below, which hands the carry over at every step, every
# boundary is covered; each extra split length costs a compilation per model.
SPLITS = (1, 4, 6, T - 1)


@models
def test_chunking(name, getkey):
    model = SEQUENCE_MODELS[name](getkey())
    run = _jit(model)
    xs, resets = _inputs(getkey())
    carry0 = _random_carry(model, getkey())
    full_carry, full = run(carry0, xs, resets)
    for k in SPLITS:
        carry, first = run(carry0, xs[:k], resets[:k])
        carry, second = run(carry, xs[k:], resets[k:])
        assert tree_allclose(
            jnp.concatenate([first, second]), full, rtol=RTOL, atol=ATOL
        ), (
            name,
            k,
            tree_max_abs_diff(jnp.concatenate([first, second]), full),
        )
        assert tree_allclose(carry, full_carry, rtol=RTOL, atol=ATOL), (name, k)


@models
def test_step_by_step_equals_whole_sequence(name, getkey):
    """Acting one step at a time in an environment equals training on the sequence."""
    model = SEQUENCE_MODELS[name](getkey())
    run = _jit(model)
    xs, resets = _inputs(getkey())
    carry = model.init_carry()
    _, full = run(carry, xs, resets)
    ys = []
    for t in range(T):
        carry, y = run(carry, xs[t : t + 1], resets[t : t + 1])
        ys.append(y)
    assert tree_allclose(jnp.concatenate(ys), full, rtol=RTOL, atol=ATOL)


@models
def test_reset_isolation(name, getkey):
    """Outputs at and after a reset ignore everything before it, exactly."""
    model = SEQUENCE_MODELS[name](getkey())
    run = _jit(model)
    r = 5
    xs, resets = _inputs(getkey(), resets_at=(r,))
    carry0 = _random_carry(model, getkey())

    def after_reset(carry, xs):
        _, ys = model(carry, xs, resets)
        return ys[r:]

    # Values: perturbing the past and the incoming carry changes nothing after r,
    # and the outputs equal a fresh run from the initial carry.
    other_xs = xs.at[:r].set(jr.normal(getkey(), (r, IN)) * 10)
    other_carry = _random_carry(model, getkey())
    base = after_reset(carry0, xs)
    assert jnp.array_equal(base, after_reset(other_carry, other_xs))
    _, fresh = run(model.init_carry(), xs[r:], resets[r:])
    assert tree_allclose(base, fresh, rtol=RTOL, atol=ATOL)

    # Gradients across the boundary are exactly zero.
    def loss(carry, xs):
        return jnp.sum(after_reset(carry, xs) ** 2)

    g_carry, g_xs = jax.jit(jax.grad(loss, argnums=(0, 1)))(carry0, xs)
    assert jnp.all(g_xs[:r] == 0)
    assert all(jnp.all(g == 0) for g in jtu.tree_leaves(g_carry))
    assert jnp.any(g_xs[r:] != 0)


@models
def test_carry_structure_is_stable(name, getkey):
    model = SEQUENCE_MODELS[name](getkey())
    xs, resets = _inputs(getkey())
    carry0 = model.init_carry()
    carry1, ys = model(carry0, xs, resets)
    shape = lambda c: jtu.tree_map(lambda x: (x.shape, x.dtype), c)
    assert jtu.tree_structure(carry0) == jtu.tree_structure(carry1)
    assert shape(carry0) == shape(carry1)
    assert ys.shape[0] == T and ys.dtype == jnp.float32


@models
def test_transforms(name, getkey):
    """vmap gives the per-example result; grad reaches the parameters."""
    model = SEQUENCE_MODELS[name](getkey())
    B = 3
    xs = jr.normal(getkey(), (B, T, IN))
    resets = jr.bernoulli(getkey(), 0.2, (B, T))
    carry = jax.vmap(lambda _: model.init_carry())(jnp.arange(B))

    single = _jit(model)
    eager = [
        single(jtu.tree_map(lambda c: c[b], carry), xs[b], resets[b]) for b in range(B)
    ]
    jitted = eqx.filter_jit(lambda m, *a: jax.vmap(m)(*a))(model, carry, xs, resets)
    assert tree_allclose(
        jitted[1], jnp.stack([e[1] for e in eager]), rtol=RTOL, atol=ATOL
    )

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(model):
        _, ys = jax.vmap(model)(carry, xs, resets)
        return jnp.mean(ys**2)

    grads = grad(model)
    leaves = jtu.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert leaves and all(jnp.all(jnp.isfinite(g)) for g in leaves)
    assert any(jnp.any(g != 0) for g in leaves)


@models
def test_wrong_shapes_fail_at_trace_time(name, getkey):
    model = SEQUENCE_MODELS[name](getkey())
    carry = model.init_carry()
    resets = jnp.zeros(T, bool)
    # A missing time axis: jaxtyping names the argument.
    with pytest.raises(TypeCheckError, match="xs"):
        jax.eval_shape(model, carry, jnp.zeros(IN), resets)
    # Mismatched lengths of xs and resets: jaxtyping names the dimension.
    with pytest.raises(TypeCheckError, match="time"):
        jax.eval_shape(model, carry, jnp.zeros((T, IN)), jnp.zeros(T + 1, bool))
    # Resets given as floats.
    with pytest.raises(TypeCheckError, match="resets"):
        jax.eval_shape(model, carry, jnp.zeros((T, IN)), jnp.zeros(T))


@models
def test_wrong_feature_size_names_in_features(name, getkey):
    model = SEQUENCE_MODELS[name](getkey())
    with pytest.raises(ValueError, match="in_features=5"):
        jax.eval_shape(
            model, model.init_carry(), jnp.zeros((T, IN + 1)), jnp.zeros(T, bool)
        )


def test_window_never_crosses_an_episode_start(getkey):
    """A windowed cell's window holds zeros, not the previous episode's inputs,
    right after a reset: equal to a fresh run from the initial carry."""
    model = SEQUENCE_MODELS["windowed_test_cell"](getkey())
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[6].set(True)
    _, ys = _jit(model)(model.init_carry(), xs, resets)
    _, fresh = _jit(model)(model.init_carry(), xs[6:], resets[6:])
    assert tree_allclose(ys[6:], fresh, rtol=RTOL, atol=ATOL)
    # And without the reset the window does carry the previous inputs.
    _, joined = _jit(model)(model.init_carry(), xs, jnp.zeros(T, bool))
    assert not jnp.allclose(joined[6], fresh[0])


@pytest.mark.parametrize("name", sorted(MEMOROID_MODELS))
def test_memoroid_scans_agree(name, getkey):
    """Every scan gives the step-by-step fold's outputs, final carry and parameter
    gradients (float32, tolerance 1e-5 relative and absolute), over a long
    sequence with random resets: the associative scan, the chunked scan, and the
    sequential fold with its rematerialised chunks (257 steps: chunks of 16 with
    15 padding steps, and of 5)."""
    model = MEMOROID_MODELS[name](getkey())
    L = 257
    xs = jr.normal(getkey(), (L, IN))
    resets = jr.bernoulli(getkey(), 0.05, (L,))
    carry = _random_carry(model, getkey())

    def run(memoroid):
        def loss(cell):
            carry_out, ys = eqx.tree_at(lambda m: m.cell, memoroid, cell)(
                carry, xs, resets
            )
            return jnp.mean(ys**2), (carry_out, ys)

        grads, (carry_out, ys) = eqx.filter_jit(eqx.filter_grad(loss, has_aux=True))(
            memoroid.cell
        )
        return ys, carry_out, grads

    # One step per chunk: the plain fold, nothing rematerialised or padded.
    reference = run(mnn.Memoroid(model.cell, scan="sequential", chunk_size=L))
    for scan, chunk_size in [
        ("sequential", None),
        ("sequential", 5),
        ("chunked", None),
        ("associative", None),
    ]:
        got = run(mnn.Memoroid(model.cell, scan=scan, chunk_size=chunk_size))
        for what, a, b in zip(("outputs", "carry", "gradients"), got, reference):
            assert tree_allclose(a, b, rtol=RTOL, atol=ATOL), (
                scan,
                chunk_size,
                what,
                tree_max_abs_diff(a, b),
            )


def test_memoroid_auto_scan(getkey):
    """`scan="auto"` is the associative scan on an accelerator; on the CPU the
    sequential fold for one step and for long sequences, the chunked scan in
    between; an explicit choice is kept."""
    cell = mnn.LRUCell(in_features=IN, features=3, hidden_dim=4, key=getkey())
    model = mnn.Memoroid(cell)
    if jax.default_backend() == "cpu":
        assert model.resolved_scan(1) == "sequential"
        assert model.resolved_scan(128) == "chunked"
        assert model.resolved_scan(1024) == "sequential"
        # A given chunk_size decides what "one chunk" is.
        wide = mnn.Memoroid(cell, chunk_size=256)
        assert wide.resolved_scan(200) == "sequential"
        assert wide.resolved_scan(300) == "chunked"
    else:
        assert model.resolved_scan(1024) == "associative"
    assert mnn.Memoroid(cell, scan="chunked").resolved_scan(1024) == "chunked"


@pytest.mark.parametrize("name", sorted(MEMOROID_MODELS))
def test_memoroid_operator_is_associative(name, getkey):
    """(a . b) . c == a . (b . c) on lifted random inputs."""
    cell = MEMOROID_MODELS[name](getkey()).cell
    shape = (IN,) if cell.window == 1 else (cell.window, IN)
    a, b, c = (cell.lift(jr.normal(getkey(), shape)) for _ in range(3))
    left = cell.combine(cell.combine(a, b), c)
    right = cell.combine(a, cell.combine(b, c))
    assert tree_allclose(left, right, rtol=RTOL, atol=ATOL)
    # The identity is a two-sided identity.
    e = cell.identity()
    assert tree_allclose(cell.combine(e, a), a, rtol=RTOL, atol=ATOL)
    assert tree_allclose(cell.combine(a, e), a, rtol=RTOL, atol=ATOL)


def test_memoroid_rejects_unknown_scan(getkey):
    cell = mnn.LRUCell(in_features=IN, features=3, hidden_dim=4, key=getkey())
    # Without the test suite's jaxtyping hook this is Memoroid's own ValueError.
    with pytest.raises((ValueError, TypeCheckError), match="scan"):
        mnn.Memoroid(cell, scan="parallel")
    with pytest.raises((ValueError, TypeCheckError), match="chunk_size"):
        mnn.Memoroid(cell, chunk_size=0)
