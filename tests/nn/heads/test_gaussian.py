"""Gaussian and SquashedGaussian policy heads: log-probabilities and entropies
against the closed forms (float64 NumPy), the tanh change of variables, bounds,
temperature 0 and finite gradients where the squashed action saturates."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.nn.heads._gaussian import Gaussian, SquashedGaussian


T, IN, A = 6, 5, 3
# float32 head vs float64 reference; the log-probabilities are O(10) sums of a
# few float32 terms, so relative 1e-5 (absolute 1e-5 near zero).
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _linear(layer, x):
    return _f64(x) @ _f64(layer.weight).T + _f64(layer.bias)


def _normal_log_prob(u, mean, std):
    z = (u - mean) / std
    return np.sum(-0.5 * z**2 - np.log(std) - 0.5 * math.log(2 * math.pi), axis=-1)


def test_gaussian_log_prob_and_entropy_match_the_formula(getkey):
    head = Gaussian(in_features=IN, action_dim=A, scale=1.0, key=getkey())
    head = eqx.tree_at(lambda h: h.log_std, head, jr.normal(getkey(), (A,)))
    x, actions = jr.normal(getkey(), (T, IN)), jr.normal(getkey(), (T, A))

    @eqx.filter_jit
    def run(head, key):
        dist = head(x)
        assert dist.batch_shape == (T,) and dist.event_shape == (A,)
        sample, log_prob = dist.sample_and_log_prob(seed=key)
        return dist.log_prob(actions), dist.entropy(), log_prob, sample

    log_prob, entropy, sample_log_prob, sample = jax.device_get(run(head, getkey()))
    mean = _linear(head.mean, x)
    std = np.broadcast_to(np.exp(_f64(head.log_std)), mean.shape)
    expected = _normal_log_prob(_f64(actions), mean, std)
    np.testing.assert_allclose(log_prob, expected, rtol=RTOL, atol=ATOL)
    expected = np.sum(np.log(std) + 0.5 * (1 + math.log(2 * math.pi)), axis=-1)
    np.testing.assert_allclose(entropy, expected, rtol=RTOL, atol=ATOL)
    # sample_and_log_prob works under strict rank promotion and agrees.
    assert sample.shape == (T, A)
    expected = _normal_log_prob(_f64(sample), mean, std)
    np.testing.assert_allclose(sample_log_prob, expected, rtol=RTOL, atol=ATOL)
    # At initialisation: small means (output scale 0.01), unit standard deviation.
    head = Gaussian(in_features=IN, action_dim=A, key=getkey())
    mean, std = eqx.filter_jit(lambda h: (h(x).mean(), h(x).stddev()))(head)
    assert np.all(np.abs(_f64(mean)) < 0.1)
    np.testing.assert_allclose(std, np.ones((T, A)))


def _squashed_reference(head, x, actions):
    """log N(atanh(a')) - Σ log(1 - a'^2) - Σ log(half width), a' in (-1, 1)."""
    mean = _linear(head.mean, x)
    log_std = np.clip(_linear(head.log_std, x), head.log_std_min, head.log_std_max)
    std = np.exp(log_std)
    if head.low is None:
        shift, half = np.zeros(A), np.ones(A)
    else:
        low, high = np.array(head.low), np.array(head.high)
        shift, half = (high + low) / 2, (high - low) / 2
    squashed = (_f64(actions) - shift) / half
    u = np.arctanh(squashed)
    return (
        _normal_log_prob(u, mean, std)
        - np.sum(np.log(1 - squashed**2), axis=-1)
        - np.sum(np.log(half))
    )


@pytest.mark.parametrize("bounds", [None, (-2.0, (1.0, 3.0, 0.5))])
def test_squashed_gaussian_log_prob_is_the_change_of_variables(getkey, bounds):
    low, high = bounds if bounds is not None else (None, None)
    head = SquashedGaussian(
        in_features=IN, action_dim=A, low=low, high=high, scale=1.0, key=getkey()
    )
    lo = -np.ones(A) if low is None else np.broadcast_to(low, A)
    hi = np.ones(A) if high is None else np.array(high)
    x = jr.normal(getkey(), (T, IN))
    # Keep actions away from the bounds, where float32 atanh loses precision.
    u = np.asarray(jr.uniform(getkey(), (T, A), minval=0.05, maxval=0.95))
    actions = jnp.asarray(lo + (hi - lo) * u, jnp.float32)

    @eqx.filter_jit
    def run(head, key):
        dist = head(x)
        assert dist.batch_shape == (T,) and dist.event_shape == (A,)
        samples, log_prob = dist.sample_and_log_prob(seed=key)
        return dist.log_prob(actions), samples, log_prob, dist.log_prob(samples)

    log_prob, samples, sample_log_prob, inverted = jax.device_get(run(head, getkey()))
    if low is None:  # strictly inside, although float32 tanh saturates
        assert np.all((_f64(samples) > lo) & (_f64(samples) < hi))
    else:  # the float32 affine map may round onto a bound
        assert np.all((_f64(samples) >= lo) & (_f64(samples) <= hi))
    expected = _squashed_reference(head, x, actions)
    np.testing.assert_allclose(log_prob, expected, rtol=RTOL, atol=ATOL)
    # The log-probability from the pre-squash sample is log_prob of the action,
    # where float32 atanh can invert tanh (away from the bounds; 1e-4 relative
    # because atanh amplifies the float32 rounding of the action).
    inside = np.all(
        np.abs((_f64(samples) - (hi + lo) / 2) / ((hi - lo) / 2)) < 0.99, -1
    )
    np.testing.assert_allclose(
        np.asarray(sample_log_prob)[inside],
        np.asarray(inverted)[inside],
        rtol=1e-4,
        atol=1e-4,
    )


def test_squashed_gaussian_clips_log_std(getkey):
    head = SquashedGaussian(in_features=IN, action_dim=A, scale=1.0, key=getkey())
    head = eqx.tree_at(lambda h: h.log_std.weight, head, 1e3 * head.log_std.weight)
    x = jr.normal(getkey(), (T, IN))
    std = eqx.filter_jit(lambda h: h(x).distribution.stddev())(head)
    log_std = np.log(_f64(std))
    assert np.all(log_std >= -10 - 1e-4) and np.all(log_std <= 2 + 1e-4)
    assert np.any(np.isclose(log_std, -10, atol=1e-4))
    assert np.any(np.isclose(log_std, 2, atol=1e-4))


def test_squashed_gaussian_temperature(getkey):
    head = SquashedGaussian(
        in_features=IN, action_dim=A, low=0.0, high=4.0, scale=1.0, key=getkey()
    )
    x = jr.normal(getkey(), (T, IN))

    @jax.jit
    def sample(temperature, key):
        return head(x, temperature).sample_and_log_prob(seed=key)

    deterministic = 2 + 2 * np.tanh(_linear(head.mean, x))
    a1, lp1 = sample(0.0, getkey())
    a2, _ = sample(0.0, getkey())
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(a1, deterministic, rtol=1e-6, atol=1e-6)
    assert np.all(np.isfinite(lp1))
    # A temperature scales the standard deviation.
    std = eqx.filter_jit(lambda h, t: h(x, t).distribution.stddev())
    np.testing.assert_allclose(std(head, 0.5), 0.5 * std(head, 1.0), rtol=1e-6)


def test_squashed_gaussian_gradients_finite_at_the_bounds(getkey):
    head = SquashedGaussian(in_features=IN, action_dim=A, scale=1.0, key=getkey())
    # Means of order 100: float32 tanh(u) rounds to ±1 for most samples.
    head = eqx.tree_at(lambda h: h.mean.weight, head, 100 * head.mean.weight)
    x = jr.normal(getkey(), (T, IN))
    key = getkey()

    def sampled(head):
        return jnp.sum(head(x).sample_and_log_prob(seed=key)[1])

    def at_bounds(head):
        return jnp.sum(head(x).log_prob(jnp.sign(jax.vmap(head.mean)(x))))

    for f in (sampled, at_bounds):
        value, grads = eqx.filter_jit(eqx.filter_value_and_grad(f))(head)
        assert np.isfinite(value)
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    # Most samples saturate (to the largest float32 below 1), still inside.
    samples = _f64(eqx.filter_jit(lambda h: h(x).sample(seed=key))(head))
    assert np.mean(np.abs(samples) > 1 - 1e-6) > 0.5 and np.all(np.abs(samples) < 1)


def test_gaussian_heads_under_vmap_and_jit(getkey):
    gaussian = Gaussian(in_features=IN, action_dim=A, key=getkey())
    squashed = SquashedGaussian(in_features=IN, action_dim=A, key=getkey())
    xs = jr.normal(getkey(), (2, T, IN))
    actions = jnp.tanh(jr.normal(getkey(), (2, T, A)))

    @eqx.filter_jit
    def log_probs(head, xs, actions):
        return jax.vmap(lambda x, a: head(x).log_prob(a))(xs, actions)

    assert log_probs(gaussian, xs, actions).shape == (2, T)
    assert log_probs(squashed, xs, actions).shape == (2, T)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="action_dim"):
        Gaussian(in_features=IN, action_dim=0, key=getkey())
    with pytest.raises(ValueError, match="log_std_min"):
        SquashedGaussian(
            in_features=IN, action_dim=A, log_std_min=2.0, log_std_max=2.0, key=getkey()
        )
    with pytest.raises(ValueError, match="low"):
        SquashedGaussian(in_features=IN, action_dim=A, low=-1.0, key=getkey())
    with pytest.raises(ValueError, match="low < high"):
        SquashedGaussian(
            in_features=IN, action_dim=A, low=1.0, high=(2.0, 1.0, 3.0), key=getkey()
        )
    with pytest.raises(ValueError, match="high"):
        SquashedGaussian(
            in_features=IN, action_dim=A, low=0.0, high=(1.0, 2.0), key=getkey()
        )
