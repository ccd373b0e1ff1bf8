"""`RTUCell` (Elelimy et al. 2024), checked against the recurrence written with
complex numbers: $z_t = f(\\mathrm{Re}\\,w_t) + i f(\\mathrm{Im}\\,w_t)$ with
$w_t = \\lambda z_{t-1} + \\gamma (B^{re} + i B^{im}) x_t$ and
$\\lambda = r e^{i\\theta}$."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._rtu import RTUCell

from ..helpers import reference_loop, tree_allclose


T, IN, F, H = 16, 3, 5, 4
# float32: the cell expands the complex product into real arithmetic, the reference
# multiplies complex64 numbers; both round at the 1e-7 level.
RTOL = ATOL = 1e-5


def test_matches_complexreference_loop(getkey):
    cell = RTUCell(in_features=IN, features=F, hidden_dim=H, key=getkey())
    xs = jr.normal(getkey(), (T, IN)) * 2
    resets = jnp.zeros(T, bool).at[jnp.array([0, 9])].set(True)
    r = jnp.exp(-jnp.exp(cell.nu_log))
    lam = jax.lax.complex(
        r * jnp.cos(jnp.exp(cell.theta_log)), r * jnp.sin(jnp.exp(cell.theta_log))
    )
    gamma = (jnp.sqrt(1 - r**2) + 1e-8).astype(jnp.complex64)
    B = jax.lax.complex(cell.B[0], cell.B[1])

    def step(z, x):
        w = lam * z + gamma * (B @ x.astype(B.dtype))
        z = jax.lax.complex(jnp.tanh(w.real), jnp.tanh(w.imag))
        y = cell.weight_out @ jnp.concatenate([z.real, z.imag]) + cell.bias_out
        return z, y

    expected = reference_loop(step, jnp.zeros(H, jnp.complex64), xs, resets)
    rnn = mnn.RNN(cell)
    _, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, resets)
    assert ys.shape == (T, F) and ys.dtype == jnp.float32
    assert tree_allclose(ys, expected, rtol=RTOL, atol=ATOL)


def test_initial_modulus_and_phase_ranges(getkey):
    cell = RTUCell(
        in_features=IN,
        features=F,
        hidden_dim=256,
        r_min=0.5,
        r_max=0.9,
        max_phase=math.pi / 4,
        key=getkey(),
    )
    r = jnp.exp(-jnp.exp(cell.nu_log))
    theta = jnp.exp(cell.theta_log)
    assert jnp.all((r >= 0.5 - 1e-6) & (r <= 0.9 + 1e-6))
    assert jnp.all((theta >= 0) & (theta <= math.pi / 4 + 1e-6))


@pytest.mark.parametrize("r_min, r_max", [(0.5, 0.5), (-0.1, 0.5), (0.0, 1.5)])
def test_bad_radii(r_min, r_max, getkey):
    with pytest.raises(ValueError, match="r_min"):
        RTUCell(
            in_features=IN,
            features=F,
            hidden_dim=H,
            r_min=r_min,
            r_max=r_max,
            key=getkey(),
        )
