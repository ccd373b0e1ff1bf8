"""RoPE, ALiBi and LearnablePositionalEmbedding."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from memrl_eqx.nn._positional import (
    ALiBi,
    alibi_slopes,
    LearnablePositionalEmbedding,
    RoPE,
)


_call = eqx.filter_jit(lambda model, *args: model(*args))


def test_rope_is_a_rotation(getkey):
    """Each feature pair is rotated by position * base^(-2i/d): norms of pairs
    are kept, and the result equals the complex-number form (float32, O(1)
    values, angles up to 13 rad: 1e-5)."""
    rope = RoPE(base=100.0)
    x = jr.normal(getkey(), (13, 2, 6))
    positions = jnp.arange(13, dtype=jnp.int32)
    y = jax.jit(rope.rotate)(x, positions)
    pair_norms = lambda a: jnp.hypot(a[..., 0::2], a[..., 1::2])
    np.testing.assert_allclose(pair_norms(y), pair_norms(x), rtol=1e-5, atol=1e-5)
    theta = 100.0 ** (-np.arange(3) * 2 / 6)
    xn = np.asarray(x, np.float64)
    z = xn[..., 0::2] + 1j * xn[..., 1::2]
    z = z * np.exp(1j * np.arange(13)[:, None, None] * theta)
    np.testing.assert_allclose(y[..., 0::2], z.real, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y[..., 1::2], z.imag, rtol=1e-5, atol=1e-5)


def test_rope_dot_product_depends_only_on_the_offset(getkey):
    """$R_p q \\cdot R_s k$ is a function of $s - p$: equal for (p, s) = (0, 3),
    (5, 8) and (40, 43) (float32, angles up to 43 rad: 1e-4)."""
    rope = RoPE()
    q = jr.normal(getkey(), (1, 1, 8))
    k = jr.normal(getkey(), (1, 1, 8))

    @jax.jit
    def dot(p, s):
        p, s = jnp.array([p], jnp.int32), jnp.array([s], jnp.int32)
        q2, k2, bias = rope(q, k, p, s)
        assert bias is None
        return jnp.sum(q2 * k2)

    reference = dot(0, 3)
    for p in (5, 40):
        np.testing.assert_allclose(dot(p, p + 3), reference, rtol=1e-4, atol=1e-4)
    # And it does depend on the offset.
    assert not np.isclose(dot(0, 4), reference)


def test_rope_needs_an_even_head_dim(getkey):
    with pytest.raises(ValueError, match="even"):
        RoPE().check(num_heads=2, head_dim=5)
    with pytest.raises(ValueError, match="even"):
        RoPE().rotate(jnp.zeros((3, 1, 5)), jnp.arange(3, dtype=jnp.int32))
    with pytest.raises(ValueError, match="base"):
        RoPE(base=1.0)


def test_alibi_slopes():
    """Press et al. 2022: 2^-1 ... 2^-8 for 8 heads, 2^-8h/H for powers of two,
    and for 6 heads the 4-head slopes then every other 8-head slope."""
    np.testing.assert_array_equal(alibi_slopes(8), 2.0 ** -np.arange(1.0, 9))
    np.testing.assert_array_equal(alibi_slopes(4), 2.0 ** (-2 * np.arange(1.0, 5)))
    np.testing.assert_array_equal(alibi_slopes(1), [2.0**-8])
    np.testing.assert_array_equal(
        alibi_slopes(6), 2.0 ** -np.array([2.0, 4, 6, 8, 1, 3])
    )
    np.testing.assert_array_equal(
        alibi_slopes(12),
        np.concatenate(
            [2.0 ** -np.arange(1.0, 9), 2.0 ** -np.array([0.5, 1.5, 2.5, 3.5])]
        ),
    )


def test_alibi_bias(getkey):
    """bias[h, t, s] = m_h (s - t); queries and keys pass unchanged. Built with
    `num_heads` positional, as the guide writes it."""
    alibi = ALiBi(4)
    q = jr.normal(getkey(), (3, 4, 2))
    k = jr.normal(getkey(), (5, 4, 2))
    q_pos = jnp.array([2, 3, 4], jnp.int32)
    k_pos = jnp.arange(5, dtype=jnp.int32)
    q2, k2, bias = alibi(q, k, q_pos, k_pos)
    assert q2 is q and k2 is k
    slopes = 2.0 ** (-2 * np.arange(1.0, 5))
    expected = slopes[:, None, None] * (np.arange(5)[None, None, :] - [[[2], [3], [4]]])
    np.testing.assert_allclose(bias, expected, rtol=1e-6)
    assert ALiBi(num_heads=4).num_heads == 4


def test_alibi_bad_arguments():
    with pytest.raises((ValueError, TypeCheckError), match="num_heads"):
        ALiBi(0)
    with pytest.raises(ValueError, match="num_heads=2"):
        ALiBi(2).check(num_heads=4, head_dim=8)


def _embedding(key, num_embeddings=16, features=3):
    return LearnablePositionalEmbedding(
        num_embeddings=num_embeddings, features=features, key=key
    )


def test_learnable_positions_reset_and_continue(getkey):
    """y_t = x_t + E[p_t], p_t = steps since the episode start; the count goes
    on across calls and restarts at resets (exact: a gather and one add)."""
    model = _embedding(getkey())
    xs = jr.normal(getkey(), (10, 3))
    resets = jnp.zeros(10, bool).at[jnp.array([0, 6])].set(True)
    carry, ys = _call(model, model.init_carry(), xs, resets)
    positions = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    np.testing.assert_array_equal(ys, xs + model.embeddings[positions])
    assert carry == 4
    # The next call continues the episode, unless it starts with a reset.
    _, ys = _call(model, carry, xs, jnp.zeros(10, bool))
    np.testing.assert_array_equal(ys, xs + model.embeddings[np.arange(4, 14)])
    _, ys = _call(model, carry, xs, resets)
    np.testing.assert_array_equal(ys, xs + model.embeddings[positions])
    assert model.in_features == 3


def test_learnable_out_of_range_raises(getkey):
    """Position num_embeddings - 1 is the last one embedded; one more step is a
    runtime error naming num_embeddings, also under jit."""
    model = _embedding(getkey(), num_embeddings=8)
    xs = jr.normal(getkey(), (8, 3))
    carry, _ = _call(model, model.init_carry(), xs, jnp.zeros(8, bool))  # p = 0..7
    assert carry == 8
    with pytest.raises(eqx.EquinoxRuntimeError, match="num_embeddings=8"):
        _call(model, carry, xs[:1], jnp.zeros(1, bool))
    # A reset at that step starts over instead.
    _, ys = _call(model, carry, xs[:1], jnp.ones(1, bool))
    np.testing.assert_array_equal(ys, xs[:1] + model.embeddings[:1])


def test_learnable_bad_arguments(getkey):
    with pytest.raises((ValueError, TypeCheckError), match="num_embeddings"):
        _embedding(getkey(), num_embeddings=0)
    with pytest.raises((ValueError, TypeCheckError), match="features"):
        _embedding(getkey(), features=0)
