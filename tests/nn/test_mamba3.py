"""`Mamba3Cell` (Lahoti et al. 2026): the two-tap recurrence against a step-by-step
reference, the monoid laws, reset isolation of the carried previous input, init."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._mamba3 import Mamba3Cell, Mamba3Element

from ..helpers import tree_allclose


IN, FEATURES, HEADS, HEAD_DIM, STATE = 3, 5, 2, 3, 6
T = 40
RESETS_AT = (0, 11, 12, 14, 30)
# Scans and chunk sizes: the chunked scan with chunks of 4 starts chunks inside
# episodes (where the two-tap term crosses a chunk boundary) and at resets.
SCANS = [("associative", None), ("chunked", 4), ("sequential", None)]


def _cell(key, dt_shift=0.0):
    cell = Mamba3Cell(
        in_features=IN,
        features=FEATURES,
        num_heads=HEADS,
        head_dim=HEAD_DIM,
        state_dim=STATE,
        key=key,
    )
    return eqx.tree_at(lambda c: c.dt_bias, cell, cell.dt_bias + dt_shift)


def _inputs(key):
    xs = jr.normal(key, (T, IN))
    resets = np.zeros(T, bool)
    resets[list(RESETS_AT)] = True
    return xs, resets


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _reference(cell, xs, resets):
    """Mamba-3 written from the reference's description in float64 numpy, one
    step at a time:

    $h_t = \\alpha_t h_{t-1} + \\beta_t u_{t-1} + \\gamma_t u_t$, with
    $\\alpha_t = e^{\\Delta_t A_t + i \\Delta_t \\theta_t}$,
    $\\beta_t = (1 - \\lambda_t) \\Delta_t \\alpha_t$, $\\gamma_t = \\lambda_t
    \\Delta_t$ and $u_t = B_t \\otimes x^\\text{in}_t$. This is what the operator
    unrolls to: folding the lifted element $(\\gamma_t u_t, u_t, \\alpha_t,
    \\beta_t)$ onto the prefix $(h_{t-1}, u_{t-1}, \\cdot, \\cdot)$ gives state
    $\\alpha_t h_{t-1} + \\beta_t u_{t-1} + \\gamma_t u_t$ and input $u_t$. At an
    episode start (a reset, or the first step from the initial carry)
    $h_{t-1} = 0$ and $u_{t-1} = 0$: the previous episode's last input does not
    enter. $y_t = W_\\text{out}((\\mathrm{Re}(\\bar C_t \\cdot h_t) + D
    x^\\text{in}_t) \\odot \\mathrm{silu}(z_t))$. The angle is written as the
    reference writes it, $\\pi(2\\sigma(2v) - 1)$."""
    p = lambda a: np.asarray(a, np.float64)
    heads, head_dim, n = cell.num_heads, cell.head_dim, cell.state_dim
    half = n // 2
    xs = p(xs)
    x_in = (xs @ p(cell.x_proj).T).reshape(-1, heads, head_dim)
    z = xs @ p(cell.z_proj).T
    bc = xs @ p(cell.bc_proj).T

    def packed(v, which):
        v = v / np.sqrt(np.mean(v**2, axis=-1, keepdims=True) + 1e-5)
        v = (v * p(cell.bc_norm)[which])[:, None, :] + p(cell.bc_bias)[which]
        return v[..., :half] + 1j * v[..., half:]

    b, c = packed(bc[:, :n], 0), packed(bc[:, n:], 1)  # (T, heads, half)
    dt = np.logaddexp(0.0, xs @ p(cell.dt_proj).T + p(cell.dt_bias))
    a = -np.logaddexp(0.0, xs @ p(cell.A_proj).T + p(cell.A_bias))
    v = (xs @ p(cell.theta_proj).T + p(cell.theta_bias)).reshape(-1, heads, half)
    theta = np.pi * (2 * _sigmoid(2 * v) - 1)
    lam = _sigmoid(xs @ p(cell.lambda_proj).T + p(cell.lambda_bias))
    alpha = np.exp((dt * a)[..., None] + 1j * dt[..., None] * theta)
    beta = ((1 - lam) * dt)[..., None] * alpha
    gamma = lam * dt
    u = b[..., None] * x_in[:, :, None, :]  # (T, heads, half, head_dim)
    ys = []
    for t in range(xs.shape[0]):
        if t == 0 or resets[t]:
            h = np.zeros((heads, half, head_dim), complex)
            u_prev = np.zeros_like(h)
        h = (
            alpha[t][..., None] * h
            + beta[t][..., None] * u_prev
            + gamma[t][:, None, None] * u[t]
        )
        u_prev = u[t]
        y = np.real(np.einsum("hn,hnp->hp", np.conj(c[t]), h))
        y = y + p(cell.D)[:, None] * x_in[t]
        ys.append(p(cell.out_proj) @ (y.ravel() * z[t] * _sigmoid(z[t])))
    return np.stack(ys)


@pytest.mark.parametrize("dt_shift", [0.0, 3.0])
@pytest.mark.parametrize("scan, chunk_size", SCANS)
def test_matches_reference_recurrence(getkey, scan, chunk_size, dt_shift):
    """Every scan over a sequence with resets (one at the start, adjacent ones,
    an episode of one step), run whole and in two calls split mid-episode with
    the carry handed over, equals the step-by-step reference; with the initial
    step sizes (decays near 1) and larger ones (decays spread over (0, 1)).

    Tolerance: the reference is float64, the model complex64; 1e-5 relative
    and 1e-5 absolute times the largest output (the measured worst case is
    about 1e-6)."""
    cell = _cell(getkey(), dt_shift)
    xs, resets = _inputs(getkey())
    model = mnn.Memoroid(cell, scan=scan, chunk_size=chunk_size)
    run = eqx.filter_jit(model)
    expected = _reference(cell, xs, resets)
    atol = 1e-5 * max(1.0, np.abs(expected).max())
    _, ys = run(model.init_carry(), xs, jnp.asarray(resets))
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-5, atol=atol)
    k = 20  # mid-episode: the first step of the second call uses u_{k-1}
    carry, head = run(model.init_carry(), xs[:k], jnp.asarray(resets[:k]))
    _, tail = run(carry, xs[k:], jnp.asarray(resets[k:]))
    np.testing.assert_allclose(
        np.concatenate([head, tail]), expected, rtol=1e-5, atol=atol
    )


def _random_element(key):
    """An element with a random complex state and decay."""
    k1, k2 = jr.split(key)
    normal = lambda k, shape: jax.lax.complex(*jr.normal(k, (2,) + shape))
    return Mamba3Element(
        state=normal(k1, (HEADS, STATE // 2, HEAD_DIM)),
        decay=normal(k2, (HEADS, STATE // 2)),
    )


def test_operator_is_associative_with_a_two_sided_identity(getkey):
    """`(a . b) . c == a . (b . c)` on random elements (random complex states
    and decays) and on lifted ones (large inputs, both taps non-zero); the
    identity is exact on both sides."""
    cell = _cell(getkey(), dt_shift=3.0)
    lift = eqx.filter_jit(cell.lift)
    combine = eqx.filter_jit(cell.combine)
    e = cell.identity()
    for _ in range(3):
        a, b, c = (_random_element(getkey()) for _ in range(3))
        left = combine(combine(a, b), c)
        right = combine(a, combine(b, c))
        assert tree_allclose(left, right, rtol=1e-5, atol=1e-5)
        assert tree_allclose(combine(e, a), a, rtol=0, atol=0)
        assert tree_allclose(combine(a, e), a, rtol=0, atol=0)
    for _ in range(3):
        a, b, c = (lift(jr.normal(getkey(), (2, IN)) * 10) for _ in range(3))
        left = combine(combine(a, b), c)
        right = combine(a, combine(b, c))
        assert tree_allclose(left, right, rtol=1e-5, atol=1e-5)
        assert tree_allclose(combine(e, a), a, rtol=0, atol=0)
        assert tree_allclose(combine(a, e), a, rtol=0, atol=0)
    assert tree_allclose(combine(e, e), e, rtol=0, atol=0)


@pytest.mark.parametrize("scan, chunk_size", SCANS)
def test_reset_drops_the_previous_input(getkey, scan, chunk_size):
    """At a reset neither the previous state nor the previous episode's last
    input (the two-tap term's $u_{t-1}$, from the input window that `Memoroid`
    carries) reaches the outputs: with a reset at step 0 and at step 6 (inside
    a chunk of 4), the outputs from there on equal a fresh run and their
    gradients with respect to the incoming carry and to the inputs before the
    reset are exactly zero. Without the resets both gradients are non-zero
    (the check can fail)."""
    cell = _cell(getkey(), dt_shift=1.0)
    model = mnn.Memoroid(cell, scan=scan, chunk_size=chunk_size)
    xs = jr.normal(getkey(), (12, IN))
    r = 6
    element, history = model.init_carry()
    assert history.shape == (1, IN)
    carry = (_random_element(getkey()), jr.normal(getkey(), (1, IN)) * 100)

    def outputs(carry, xs, resets):
        return model(carry, xs, resets)[1]

    def loss(carry, xs, resets, start):
        return jnp.sum(outputs(carry, xs, resets)[start:] ** 2)

    grad = eqx.filter_jit(jax.grad(loss, argnums=(0, 1)))
    # A reset at step 0: the carried input is dropped.
    resets = jnp.zeros(12, bool).at[0].set(True)
    fresh = eqx.filter_jit(outputs)(model.init_carry(), xs, resets)
    assert jnp.array_equal(eqx.filter_jit(outputs)(carry, xs, resets), fresh)
    g_carry, _ = grad(carry, xs, resets, 0)
    assert all(jnp.all(g == 0) for g in jtu.tree_leaves(g_carry))
    g_carry, _ = grad(carry, xs, jnp.zeros(12, bool), 0)
    (g_element, g_history) = g_carry
    assert jnp.any(g_element.state != 0) and jnp.any(g_history != 0)
    # A reset at step r: nothing before it reaches steps r and later.
    resets = jnp.zeros(12, bool).at[r].set(True)
    other = xs.at[:r].set(jr.normal(getkey(), (r, IN)) * 10)
    base = eqx.filter_jit(outputs)(carry, xs, resets)[r:]
    assert jnp.array_equal(base, eqx.filter_jit(outputs)(carry, other, resets)[r:])
    fresh = eqx.filter_jit(outputs)(model.init_carry(), xs[r:], resets[r:])
    assert tree_allclose(base, fresh, rtol=1e-5, atol=1e-5)
    _, g_xs = grad(carry, xs, resets, r)
    assert jnp.all(g_xs[:r] == 0) and jnp.any(g_xs[r:] != 0)
    _, g_xs = grad(carry, xs, jnp.zeros(12, bool), r)
    assert jnp.any(g_xs[r - 1] != 0)


def test_long_sequence_with_large_inputs_is_finite(getkey):
    """T = 2048, inputs x10 and x100: outputs, the carry and the gradients stay
    finite (a long segment's decay underflows to 0, never to NaN)."""
    model = mnn.Memoroid(_cell(getkey()))
    L = 2048
    xs = jr.normal(getkey(), (L, IN))
    resets = jr.bernoulli(getkey(), 0.001, (L,))

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


def test_initialisation(getkey):
    cell = Mamba3Cell(in_features=IN, features=FEATURES, num_heads=64, key=getkey())
    assert (cell.head_dim, cell.state_dim, cell.window) == (16, 16, 2)
    dt = jax.nn.softplus(cell.dt_bias)
    assert jnp.all(dt >= 1e-3 * (1 - 1e-4)) and jnp.all(dt <= 0.1 * (1 + 1e-4))
    assert jnp.all(cell.D == 1) and jnp.all(cell.bc_bias == 1)
    assert jnp.all(cell.bc_norm == 1)
    e = cell.identity()
    assert e.state.shape == (64, 8, 16) and e.decay.shape == (64, 8)
    assert e.state.dtype == jnp.complex64 and jnp.all(e.decay == 1)
    # One step: |decay| = exp(dt * A) in (0, 1), a rotation by dt * theta with
    # |theta| <= pi; the taps gamma (on u_t) and beta (on u_{t-1}, read off by
    # lifting with and without a previous input) satisfy gamma + beta / decay
    # = dt, with gamma in (0, dt).
    x, x_prev = jr.normal(getkey(), (2, IN))
    lift = eqx.filter_jit(cell.lift)
    element = lift(jnp.stack([x_prev, x]))
    one_tap = lift(jnp.stack([jnp.zeros(IN), x]))
    assert jnp.array_equal(element.decay, one_tap.decay)
    dt = jax.nn.softplus(cell.dt_proj @ x + cell.dt_bias)  # this step's
    modulus = jnp.abs(element.decay)
    assert jnp.all(modulus > 0) and jnp.all(modulus < 1)
    angle = jnp.angle(element.decay) / dt[:, None]
    # (|theta| <= pi; tanh rounds to 1 in float32 for large arguments)
    assert jnp.all(jnp.abs(angle) <= math.pi * (1 + 1e-5))
    gamma = one_tap.state[:, 0, 0] / cell._u(x)[:, 0, 0]
    beta = (element.state - one_tap.state)[:, :, 0] / cell._u(x_prev)[:, :, 0]
    beta_over_decay = beta / element.decay
    np.testing.assert_allclose(gamma.imag, 0, atol=1e-5)
    np.testing.assert_allclose(beta_over_decay.imag, 0, atol=1e-5)
    np.testing.assert_allclose(
        gamma.real + beta_over_decay.real[:, 0], dt, rtol=1e-4, atol=1e-6
    )
    assert jnp.all(gamma.real > 0) and jnp.all(gamma.real < dt)


@pytest.mark.parametrize(
    "name, value, match",
    [
        ("features", 0, "features"),
        ("num_heads", 0, "num_heads"),
        ("head_dim", 0, "head_dim"),
        ("state_dim", 0, "state_dim"),
        ("state_dim", 5, "state_dim.*even"),
    ],
)
def test_bad_arguments(getkey, name, value, match):
    kwargs = dict(in_features=IN, features=FEATURES) | {name: value}
    with pytest.raises(ValueError, match=match):
        Mamba3Cell(**kwargs, key=getkey())
