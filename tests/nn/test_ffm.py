"""FFM (Morad et al. 2023): the monoid against the paper's recurrence
$S_t = \\gamma(1) \\odot S_{t-1} + \\tilde x_t$ and output block, and the
relative time that makes chunked and whole-sequence runs agree."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._ffm import FFMCell


T = 40
RESETS_AT = (0, 13, 29)
# float32 (complex64) model vs float64 reference. The aggregated decay
# $\\gamma(t) = e^{t(\\alpha + i\\omega)}$ is evaluated at t up to the episode
# length, where the float32 phase $\\omega t$ is off by up to ~1e-5 rad; with
# $|S| = O(1)$ the measured output error is ~1e-6, so 1e-5 relative and absolute.
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _reference(cell, xs, resets):
    """The FFM block step by step, from the paper's equations (float64)."""
    alpha = -np.abs(_f64(cell.a))
    omega = _f64(cell.omega)
    gamma_1 = np.exp(alpha[:, None] + 1j * omega[None, :])
    s = np.zeros((cell.memory_size, cell.context_size), complex)
    ys = []
    for x, reset in zip(_f64(xs), np.asarray(resets)):
        if reset:
            s = np.zeros_like(s)
        x_tilde = (_f64(cell.weight_in) @ x + _f64(cell.bias_in)) * _sigmoid(
            _f64(cell.weight_in_gate) @ x + _f64(cell.bias_in_gate)
        )
        s = gamma_1 * s + x_tilde[:, None]
        z = _f64(cell.weight_out) @ np.concatenate([s.real.ravel(), s.imag.ravel()])
        z = z + _f64(cell.bias_out)
        normed = (z - z.mean()) / np.sqrt(z.var() + 1e-5)
        gate = _sigmoid(_f64(cell.weight_gate) @ x + _f64(cell.bias_gate))
        skip = _f64(cell.weight_skip) @ x + _f64(cell.bias_skip)
        ys.append(normed * gate + skip * (1 - gate))
    return np.stack(ys)


def test_reference_recurrence(getkey):
    cell = FFMCell(
        in_features=3,
        features=5,
        memory_size=4,
        context_size=6,
        min_period=2,
        max_period=50,
        key=getkey(),
    )
    xs = jr.normal(getkey(), (T, 3))
    resets = jnp.zeros(T, bool).at[jnp.array(RESETS_AT)].set(True)
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    np.testing.assert_allclose(ys, _reference(cell, xs, resets), rtol=RTOL, atol=ATOL)


def test_time_is_relative_and_survives_chunking(getkey):
    """The carry's time counts the steps since the latest episode start, and a
    run split into chunks (each restarting nothing) equals the whole run. (The
    Flax original restarts element times at 0 in every call and is off by 0.3.)"""
    cell = FFMCell(
        in_features=3, features=5, memory_size=3, context_size=4, key=getkey()
    )
    model = eqx.filter_jit(mnn.Memoroid(cell))
    xs = jr.normal(getkey(), (T, 3))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 29])].set(True)
    carry, whole = model(cell.identity(), xs, resets)
    assert carry[1] == T - 29
    chunks, chunk_carry = [], cell.identity()
    for start in range(0, T, 7):
        chunk_carry, ys = model(
            chunk_carry, xs[start : start + 7], resets[start : start + 7]
        )
        chunks.append(ys)
    np.testing.assert_allclose(jnp.concatenate(chunks), whole, rtol=RTOL, atol=ATOL)
    assert chunk_carry[1] == T - 29


def test_initialisation(getkey):
    cell = FFMCell(
        in_features=3,
        features=5,
        memory_size=4,
        context_size=3,
        min_period=1,
        max_period=1024,
        key=getkey(),
    )
    np.testing.assert_allclose(cell.a, np.linspace(1e-6, 0.5, 4), rtol=1e-6)
    np.testing.assert_allclose(
        cell.omega, 2 * np.pi / np.linspace(1, 1024, 3), rtol=1e-6
    )
    # The decay never grows the memory: |gamma(t)| <= 1 for t >= 0.
    assert jnp.all(jnp.abs(cell.gamma(jnp.asarray(5.0))) <= 1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"memory_size": 0}, "memory_size"),
        ({"context_size": 0}, "context_size"),
        ({"min_period": 0}, "min_period"),
        ({"min_period": 10, "max_period": 5}, "max_period"),
    ],
)
def test_bad_arguments(kwargs, name, getkey):
    config = dict(in_features=3, features=4, memory_size=2, context_size=2) | kwargs
    with pytest.raises(ValueError, match=name):
        FFMCell(**config, key=getkey())
