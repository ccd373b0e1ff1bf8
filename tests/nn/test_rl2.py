"""`RL2Wrapper`: the wrapped model is reset at trial boundaries only, as a plain
loop over the steps computes them."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import pytest
from jaxtyping import Array, Bool, Float

import memrl_eqx.nn as mnn
from memrl_eqx.nn._rl2 import RL2Wrapper
from memrl_eqx.nn._sequence_model import AbstractSequenceModel

from ..helpers import tree_allclose


T, IN, F = 12, 3, 4
# Chunked and whole runs of a GRU: the same float operations (tolerance 1e-6 for
# a possible difference in how XLA fuses a scan of another length).
RTOL = ATOL = 1e-6


class _Probe(AbstractSequenceModel):
    """Outputs the resets it receives, as floats: shows the wrapper's resets."""

    def init_carry(self) -> tuple[()]:
        return ()

    def __call__(
        self,
        carry: tuple[()],
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[tuple[()], Float[Array, "time 1"]]:
        return (), resets[:, None].astype(jnp.float32)


def _reference(count, resets, *, steps_per_trial=None, episodes_per_trial=None):
    """The inner resets and the final counter, one step at a time."""
    inner = []
    for reset in np.asarray(resets):
        if steps_per_trial is not None:
            inner.append(count == 0)
            count = (count + 1) % steps_per_trial
        else:
            start = bool(reset) or count == 0
            trial_start = start and count in (0, episodes_per_trial)
            if start:
                count = 1 if trial_start else count + 1
            inner.append(trial_start)
    return np.array(inner), count


_run = eqx.filter_jit(lambda model, *args: model(*args))


def _gru(key):
    return mnn.RNN(mnn.GRUCell(in_features=IN, features=F, key=key))


MODES = pytest.mark.parametrize(
    "mode", [dict(steps_per_trial=5), dict(episodes_per_trial=2)]
)


def test_resets_exactly_at_trial_boundaries():
    """The pattern written out by hand. (The Flax original's 1.0.1 inverted it,
    resetting at every step except the trial starts.)"""
    xs = jnp.zeros((T, IN))
    probe = RL2Wrapper(_Probe(), steps_per_trial=4)
    (_, count), ys = probe(probe.init_carry(), xs, jnp.zeros(T, bool))
    assert ys[:, 0].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert count == 0 and count.dtype == jnp.int32

    env_resets = jnp.zeros(T, bool).at[jnp.array([0, 3, 7, 9, 10])].set(True)
    probe = RL2Wrapper(_Probe(), episodes_per_trial=2)
    (_, count), ys = probe(probe.init_carry(), xs, env_resets)
    # Episodes start at 0, 3 | 7, 9 | 10: trials start at 0, 7 and 10.
    assert ys[:, 0].tolist() == [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0]
    assert count == 1 and count.dtype == jnp.int32


@MODES
def test_resets_match_step_loop(mode, getkey):
    """Random environment resets and starting counters: the wrapper's resets and
    counter equal those of the plain loop."""
    probe = RL2Wrapper(_Probe(), **mode)
    n = mode.get("steps_per_trial") or mode["episodes_per_trial"]
    xs = jnp.zeros((T, IN))
    # The counter's range: [0, n) for steps, [0, n] for episodes.
    high = n if "steps_per_trial" in mode else n + 1
    for _ in range(20):
        resets = jr.bernoulli(getkey(), 0.3, (T,))
        count = int(jr.randint(getkey(), (), 0, high))
        (_, new_count), ys = _run(probe, ((), jnp.int32(count)), xs, resets)
        expected, expected_count = _reference(count, resets, **mode)
        assert np.array_equal(np.asarray(ys[:, 0]) == 1, expected), (count, resets)
        assert int(new_count) == expected_count


@MODES
def test_equals_inner_model_with_trial_resets(mode, getkey):
    model = _gru(getkey())
    rl2 = RL2Wrapper(model, **mode)
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 4, 6, 10])].set(True)
    (inner, count), ys = _run(rl2, rl2.init_carry(), xs, resets)
    inner_resets, expected_count = _reference(0, resets, **mode)
    expected_inner, expected = _run(
        model, model.init_carry(), xs, jnp.asarray(inner_resets)
    )
    assert tree_allclose(ys, expected, rtol=RTOL, atol=ATOL)
    assert tree_allclose(inner, expected_inner, rtol=RTOL, atol=ATOL)
    assert int(count) == expected_count


@MODES
def test_memory_kept_across_episodes_within_a_trial(mode, getkey):
    """An environment reset inside a trial does not clear the memory: outputs
    after it depend on (have nonzero gradients with respect to) inputs before."""
    rl2 = RL2Wrapper(_gru(getkey()), **mode)
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 3])].set(True)  # same trial

    def after(xs):
        _, ys = rl2(rl2.init_carry(), xs, resets)
        return jnp.sum(ys[3:5] ** 2)

    g = jax.jit(jax.grad(after))(xs)
    assert jnp.any(g[:3] != 0)


@pytest.mark.parametrize(
    "mode, boundary",
    [(dict(steps_per_trial=6), 6), (dict(episodes_per_trial=2), 8)],
)
def test_isolation_at_trial_boundary(mode, boundary, getkey):
    """At a trial boundary the memory is reset: outputs from there on equal a fresh
    run of the wrapped model, and their gradients with respect to earlier inputs
    and the incoming carry are exactly zero."""
    model = _gru(getkey())
    rl2 = RL2Wrapper(model, **mode)
    xs = jr.normal(getkey(), (T, IN))
    # Episodes start at 0, 3 (trial 1) and 8, 10 (trial 2 when 2 per trial).
    resets = jnp.zeros(T, bool).at[jnp.array([0, 3, 8, 10])].set(True)
    carry = (jr.normal(getkey(), (F,)), jnp.int32(0))

    def after(inner, xs):
        _, ys = rl2((inner, carry[1]), xs, resets)
        return ys[boundary:]

    no_resets = jnp.zeros(T - boundary, bool)
    _, fresh = _run(model, model.init_carry(), xs[boundary:], no_resets)
    assert tree_allclose(after(carry[0], xs), fresh, rtol=RTOL, atol=ATOL)
    g_inner, g_xs = jax.jit(
        jax.grad(lambda c, x: jnp.sum(after(c, x) ** 2), argnums=(0, 1))
    )(carry[0], xs)
    assert jnp.all(g_xs[:boundary] == 0) and jnp.all(g_inner == 0)
    assert jnp.any(g_xs[boundary:] != 0)
    # Just before the boundary the memory still reaches back.
    g = jax.grad(lambda x: jnp.sum(rl2(carry, x, resets)[1][boundary - 1]))(xs)
    assert jnp.any(g[: boundary - 1] != 0)


@MODES
def test_chunking_every_split(mode, getkey):
    """Running [0:k] then [k:T] with the carry handed over gives the same inner
    resets and final counter as running [0:T], for every k (shown by the probe,
    which outputs its resets); and with a GRU inside, running one step at a time
    gives the outputs and carry of the whole sequence."""
    xs = jr.normal(getkey(), (T, IN))
    resets = jr.bernoulli(getkey(), 0.3, (T,))
    probe = RL2Wrapper(_Probe(), **mode)
    carry0 = ((), jnp.int32(1))
    (_, full_count), full = _run(probe, carry0, xs, resets)
    for k in range(1, T):
        (_, count), first = _run(probe, carry0, xs[:k], resets[:k])
        (_, count), second = _run(probe, ((), count), xs[k:], resets[k:])
        assert jnp.array_equal(jnp.concatenate([first, second]), full), k
        assert int(count) == int(full_count), k

    rl2 = RL2Wrapper(_gru(getkey()), **mode)
    carry0 = (jr.normal(getkey(), (F,)), jnp.int32(1))
    full_carry, full = _run(rl2, carry0, xs, resets)
    carry, ys = carry0, []
    for t in range(T):
        carry, y = _run(rl2, carry, xs[t : t + 1], resets[t : t + 1])
        ys.append(y)
    assert tree_allclose(jnp.concatenate(ys), full, rtol=RTOL, atol=ATOL)
    assert tree_allclose(carry[0], full_carry[0], rtol=RTOL, atol=ATOL)
    assert int(carry[1]) == int(full_carry[1])


def test_fresh_carry_starts_a_trial(getkey):
    """With a zero counter the first step resets the inner model, even without
    an environment reset there (so an arbitrary inner carry is discarded)."""
    model = _gru(getkey())
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool)
    _, expected = _run(model, model.init_carry(), xs, resets)
    for mode in (dict(steps_per_trial=5), dict(episodes_per_trial=2)):
        rl2 = RL2Wrapper(model, **mode)
        carry = (jr.normal(getkey(), (F,)), jnp.int32(0))
        _, ys = _run(rl2, carry, xs, resets)
        # (steps_per_trial=5 resets again at step 5.)
        assert tree_allclose(ys[:5], expected[:5], rtol=RTOL, atol=ATOL)


def test_vmap_and_carry_structure(getkey):
    rl2 = RL2Wrapper(_gru(getkey()), episodes_per_trial=3)
    B = 3
    xs = jr.normal(getkey(), (B, T, IN))
    resets = jr.bernoulli(getkey(), 0.3, (B, T))
    carry = jax.vmap(lambda _: rl2.init_carry())(jnp.arange(B))
    new_carry, ys = eqx.filter_jit(lambda m, *a: jax.vmap(m)(*a))(
        rl2, carry, xs, resets
    )
    for b in range(B):
        single = jtu.tree_map(lambda c: c[b], carry)
        c, y = _run(rl2, single, xs[b], resets[b])
        assert tree_allclose(ys[b], y, rtol=RTOL, atol=ATOL)
        assert int(new_carry[1][b]) == int(c[1])
    shape = lambda c: jtu.tree_map(lambda x: (x.shape, x.dtype), c)
    assert shape(new_carry) == shape(carry)
    assert rl2.in_features == IN


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(), "exactly one"),
        (dict(steps_per_trial=4, episodes_per_trial=2), "exactly one"),
        (dict(steps_per_trial=0), "steps_per_trial"),
        (dict(steps_per_trial=-3), "steps_per_trial"),
        (dict(steps_per_trial=2.0), "steps_per_trial"),
        (dict(steps_per_trial=True), "steps_per_trial"),
        (dict(episodes_per_trial=0), "episodes_per_trial"),
    ],
)
def test_bad_arguments(kwargs, match, getkey):
    from jaxtyping import TypeCheckError

    with pytest.raises((ValueError, TypeCheckError), match=match):
        RL2Wrapper(_gru(getkey()), **kwargs)
