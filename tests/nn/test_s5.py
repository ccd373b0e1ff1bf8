"""S5 (Smith et al. 2023): the HiPPO-N eigenbasis, both discretisations, and the
diagonal recurrence against references written from the paper's equations."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.linalg
from jaxtyping import TypeCheckError

import memrl_eqx.nn as mnn
from memrl_eqx.nn._s5 import hippo_n_eigendecomposition, S5Cell


T = 40
RESETS_AT = (0, 13, 29)
# The model runs in float32 (complex64), the references in float64. Over T = 40
# steps with O(1) outputs the measured error is about 3e-7 (float32 rounding of a
# few complex products per step), so 1e-5 relative and absolute leaves a wide
# margin; the dense reference's expm/solve run in float64 and add nothing.
RTOL, ATOL = 1e-5, 1e-5


def _inputs(key, in_features):
    xs = jr.normal(key, (T, in_features))
    resets = np.zeros(T, bool)
    resets[list(RESETS_AT)] = True
    return xs, jnp.asarray(resets)


def _run(cell, xs, resets):
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    return np.asarray(ys, np.float64)


def _f64(a):
    return np.asarray(a, np.float64)


def _hippo_legs(n):
    """HiPPO-LegS (Gu et al. 2020) and its low-rank term P, from the formulas."""
    a = np.zeros((n, n))
    for i in range(n):
        for k in range(n):
            if i > k:
                a[i, k] = -np.sqrt((2 * i + 1) * (2 * k + 1))
            elif i == k:
                a[i, k] = -(i + 1)
    p = np.sqrt(np.arange(n) + 0.5)
    return a, p


@pytest.mark.parametrize("n", [1, 4, 7])
def test_hippo_n_eigendecomposition(n):
    lam, v = hippo_n_eigendecomposition(n)
    a, p = _hippo_legs(n)
    normal = a + np.outer(p, p)
    np.testing.assert_allclose(v @ np.diag(lam) @ v.conj().T, normal, atol=1e-10)
    np.testing.assert_allclose(v.conj().T @ v, np.eye(n), atol=1e-10)
    np.testing.assert_allclose(lam.real, -0.5, atol=1e-12)


def _diagonal_reference(cell, xs, resets):
    """$h_t = \\bar\\Lambda h_{t-1} + \\bar B x_t$, $y_t = \\mathrm{Re}(\\tilde C h_t)
    + D x_t$, discretised per state from $(\\Lambda, \\tilde B, \\Delta)$."""
    lam = _f64(cell.Lambda_re) + 1j * _f64(cell.Lambda_im)
    b = _f64(cell.B_re) + 1j * _f64(cell.B_im)
    c = _f64(cell.C_re) + 1j * _f64(cell.C_im)
    d = _f64(cell.D)
    step = cell.step_rescale * np.exp(_f64(cell.log_step))
    if cell.discretization == "zoh":
        lam_bar = np.exp(lam * step)
        b_bar = ((lam_bar - 1) / lam)[:, None] * b
    else:
        lam_bar = (1 + step / 2 * lam) / (1 - step / 2 * lam)
        b_bar = (step / (1 - step / 2 * lam))[:, None] * b
    h = np.zeros(cell.hidden_dim, complex)
    ys = []
    for x, reset in zip(_f64(xs), np.asarray(resets)):
        if reset:
            h = np.zeros_like(h)
        h = lam_bar * h + b_bar @ x
        ys.append((c @ h).real + (d * x if d.ndim == 1 else d @ x))
    return np.stack(ys)


@pytest.mark.parametrize(
    "discretization, in_features, features", [("zoh", 3, 5), ("bilinear", 4, 4)]
)
def test_reference_recurrence(discretization, in_features, features, getkey):
    cell = S5Cell(
        in_features=in_features,
        features=features,
        hidden_dim=6,
        discretization=discretization,
        step_rescale=2.0,
        key=getkey(),
    )
    # D is elementwise when the sizes agree (as in the paper), else a matrix.
    square = in_features == features
    assert cell.D.shape == ((features,) if square else (features, in_features))
    xs, resets = _inputs(getkey(), in_features)
    np.testing.assert_allclose(
        _run(cell, xs, resets),
        _diagonal_reference(cell, xs, resets),
        rtol=RTOL,
        atol=ATOL,
    )


@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
def test_equals_the_dense_hippo_n_system(discretization, getkey):
    """With one step size for all states, S5 is the discretisation of the real
    dense system $h' = A_N h + B x$, $y = \\mathrm{Re}(C h) + D x$ in the original
    basis ($A_N$ = HiPPO-N, $B = V \\tilde B$, $C = \\tilde C V^{-1}$)."""
    n, step = 5, 0.05
    cell = S5Cell(
        in_features=3,
        features=2,
        hidden_dim=n,
        discretization=discretization,
        dt_min=step,
        dt_max=step,
        key=getkey(),
    )
    a, p = _hippo_legs(n)
    a_n = a + np.outer(p, p)
    _, v = hippo_n_eigendecomposition(n)
    b = v @ (_f64(cell.B_re) + 1j * _f64(cell.B_im))
    c = (_f64(cell.C_re) + 1j * _f64(cell.C_im)) @ v.conj().T
    # B = V V^{-1} B is the real LeCun-initialised input matrix.
    np.testing.assert_allclose(b.imag, 0.0, atol=1e-6)
    step = float(np.exp(_f64(cell.log_step))[0])
    eye = np.eye(n)
    if discretization == "zoh":
        a_bar = scipy.linalg.expm(a_n * step)
        b_bar = np.linalg.solve(a_n, (a_bar - eye) @ b)
    else:
        a_bar = np.linalg.solve(eye - step / 2 * a_n, eye + step / 2 * a_n)
        b_bar = np.linalg.solve(eye - step / 2 * a_n, step * b)
    xs, resets = _inputs(getkey(), 3)
    h = np.zeros(n, complex)
    expected = []
    for x, reset in zip(_f64(xs), np.asarray(resets)):
        if reset:
            h = np.zeros_like(h)
        h = a_bar @ h + b_bar @ x
        expected.append((c @ h).real + _f64(cell.D) @ x)
    np.testing.assert_allclose(
        _run(cell, xs, resets), np.stack(expected), rtol=RTOL, atol=ATOL
    )


def test_initialisation(getkey):
    cell = S5Cell(in_features=3, features=4, hidden_dim=16, key=getkey())
    step = np.exp(_f64(cell.log_step))
    assert np.all((step >= 1e-3 * (1 - 1e-6)) & (step <= 0.1 * (1 + 1e-6)))
    decay, _ = cell.discretise()
    assert jnp.all(jnp.abs(decay) < 1)
    np.testing.assert_allclose(_f64(cell.Lambda_re), -0.5, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"discretization": "euler"}, "discretization"),
        ({"dt_min": 0.0}, "dt_min"),
        ({"dt_min": 0.2, "dt_max": 0.1}, "dt_max"),
        ({"step_rescale": 0.0}, "step_rescale"),
        ({"hidden_dim": 0}, "hidden_dim"),
    ],
)
def test_bad_arguments(kwargs, name, getkey):
    config = dict(in_features=3, features=4, hidden_dim=4) | kwargs
    # Under the test suite's jaxtyping hook a value outside the `Literal` is
    # rejected by beartype (naming the argument) before the constructor runs.
    with pytest.raises((ValueError, TypeCheckError), match=name):
        S5Cell(**config, key=getkey())
