"""`SHMCell` (Le et al. 2025): $M_t = M_{t-1} \\odot C_t + U_t$ with
$C_t = 1 + \\tanh(\\theta_t v_c^\\top)$, checked against a float64 NumPy loop, and
the deterministic schedule of calibration rows."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._shm import SHMCell

from ..helpers import tree_allclose


T, IN, F, OUT, L = 20, 3, 4, 5, 8
# The cell runs in float32 and the reference in float64: the difference is float32
# rounding through 20 steps.
RTOL = ATOL = 1e-5


def _row(seed, t):
    """The documented schedule, in Python integers: the row of episode step t is
    hash32(t ^ hash32(seed + 0x9E3779B9)) % num_thetas."""

    def hash32(x):
        mask = 0xFFFFFFFF
        x &= mask
        x ^= x >> 16
        x = (x * 0x7FEB352D) & mask
        x ^= x >> 15
        x = (x * 0x846CA68B) & mask
        return x ^ (x >> 16)

    return hash32(t ^ hash32(seed + 0x9E3779B9)) % L


def _reference(cell, xs, resets):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), cell)
    relu = lambda v: np.maximum(v, 0)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    ys = []
    for x, reset in zip(np.asarray(xs, np.float64), np.asarray(resets)):
        if reset:
            memory, t = np.zeros((F, F)), 0
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-5) * p.norm.weight + p.norm.bias
        v = p.weight[0] @ x + p.bias[0]
        k = relu(p.weight[1] @ x + p.bias[1])
        q = relu(p.weight[2] @ x + p.bias[2])
        v_c = p.weight[3] @ x + p.bias[3]
        eta = sigmoid(p.eta_weight @ x + p.eta_bias)
        k = k / (k.sum() + 1e-5)
        q = q / (q.sum() + 1e-5)
        theta = p.theta_table[_row(cell.theta_seed, t) if cell.sample_theta else 0]
        calibration = 1 + np.tanh(np.outer(theta, v_c))
        memory = memory * calibration + np.outer(eta * v, k)
        ys.append(p.weight_out @ (memory @ q) + p.bias_out)
        t += 1
    return np.stack(ys)


def _cell(key, **kwargs):
    cell = SHMCell(
        in_features=IN, features=F, output_features=OUT, num_thetas=L, key=key, **kwargs
    )
    # Non-trivial layer-norm parameters and biases.
    k1, k2, k3 = jr.split(jr.fold_in(key, 1), 3)
    return eqx.tree_at(
        lambda c: (c.norm.weight, c.norm.bias, c.bias),
        cell,
        (
            jr.uniform(k1, (IN,), minval=0.5, maxval=1.5),
            0.1 * jr.normal(k2, (IN,)),
            0.1 * jr.normal(k3, (4, F)),
        ),
    )


@pytest.mark.parametrize("sample_theta", [True, False])
def test_matches_reference_recurrence(sample_theta, getkey):
    cell = _cell(getkey(), sample_theta=sample_theta, theta_seed=3)
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 8, 15])].set(True)
    rnn = mnn.RNN(cell)
    _, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, resets)
    expected = _reference(cell, xs, resets)
    assert ys.shape == (T, OUT)
    assert tree_allclose(ys, jnp.asarray(expected, jnp.float32), rtol=RTOL, atol=ATOL)


def test_theta_schedule_is_deterministic_and_seeded(getkey):
    key = getkey()
    xs = jr.normal(getkey(), (32, IN))
    resets = jnp.zeros(32, bool)
    run = lambda cell: eqx.filter_jit(mnn.RNN(cell))(cell.init_carry(), xs, resets)
    a, b = _cell(key, theta_seed=0), _cell(key, theta_seed=1)
    # Same cell, same inputs and carry: the same outputs and carry, bit for bit.
    assert eqx.tree_equal(run(a), run(a))
    # Rows drawn step by step; different seeds give different schedules.
    steps = jnp.arange(32, dtype=jnp.float32)
    rows_a = jax.vmap(a.theta_index)(steps)
    rows_b = jax.vmap(b.theta_index)(steps)
    assert len(set(rows_a.tolist())) > 1
    assert not jnp.array_equal(rows_a, rows_b)
    assert rows_a.tolist() == [_row(0, t) for t in range(32)]
    # Over a long episode every row is used about equally often (1/8 each).
    long = jax.vmap(a.theta_index)(jnp.arange(8192, dtype=jnp.float32))
    assert jnp.all(jnp.abs(jnp.bincount(long, length=L) / 8192 - 1 / L) < 0.02)
    assert not jnp.allclose(run(a)[1], run(b)[1])
    # Without sampling, every step uses row 0.
    fixed = _cell(key, sample_theta=False)
    assert jnp.all(jax.vmap(fixed.theta_index)(steps) == 0)
    # The carry counts the episode's steps.
    carry, _ = run(a)
    assert carry.step == 32


def test_bad_num_thetas(getkey):
    with pytest.raises(ValueError, match="num_thetas"):
        SHMCell(
            in_features=IN, features=F, output_features=OUT, num_thetas=0, key=getkey()
        )
