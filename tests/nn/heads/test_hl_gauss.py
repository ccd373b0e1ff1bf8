"""HL-Gauss (Imani and White 2018; Farebrother et al. 2024): the histogram target
against the normal CDF evaluated by hand, two-hot encodings, the head's value and
its cross-entropy loss (minimised at the target), for any leading shape."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.nn.heads._hl_gauss import hl_gauss, HLGaussVNetwork, two_hot


T, IN = 6, 4
# float32 against float64 hand values: CDF differences of O(1) numbers, 1e-6.
ATOL = 1e-6


def _f64(a):
    return np.asarray(a, np.float64)


def _phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


_hl_gauss = jax.jit(hl_gauss)
_two_hot = jax.jit(two_hot)


def test_hl_gauss_is_the_normal_mass_of_each_bin():
    edges = [0.0, 1.0, 2.0, 3.0]
    sigma = 0.5

    def expected(y):  # clipped to the range
        cdf = [_phi((e - min(max(y, 0.0), 3.0)) / sigma) for e in edges]
        return [(cdf[i + 1] - cdf[i]) / (cdf[-1] - cdf[0]) for i in range(3)]

    values = [1.2, 7.0, 3.0, -0.5]
    out = _hl_gauss(jnp.array(values), jnp.array(edges), sigma)
    np.testing.assert_allclose(out, [expected(y) for y in values], atol=ATOL)


def test_two_hot_splits_between_neighbouring_atoms():
    support = jnp.array([0.0, 1.0, 2.0])
    out = _two_hot(jnp.array([0.25, 1.0, 1.9, -3.0, 5.0]), support)
    expected = [
        [0.75, 0.25, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.1, 0.9],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
    ]
    np.testing.assert_allclose(out, expected, atol=ATOL)


def test_head_bins_value_and_default_sigma(getkey):
    head = HLGaussVNetwork(
        in_features=IN, num_bins=4, v_min=0.0, v_max=2.0, key=getkey()
    )
    np.testing.assert_allclose(head.edges, [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(head.support, [0.25, 0.75, 1.25, 1.75])
    assert head.sigma == pytest.approx(0.75 * 0.5)
    x = jr.normal(getkey(), (T, IN))
    # A one-hot-ish logit: the value is that bin's centre; equal logits: the mean
    # of the centres.
    logits = jnp.array([[50.0, 0, 0, 0], [0, 0, 50.0, 0], [0, 0, 0, 0]])
    out, values = eqx.filter_jit(lambda h: (h(x), h.value(logits)))(head)
    assert out.shape == (T, 4)
    np.testing.assert_allclose(values, [0.25, 1.25, 1.0], atol=1e-5)


@pytest.mark.parametrize("sigma", [None, 0.0])
def test_loss_is_the_cross_entropy_minimised_at_the_target(getkey, sigma):
    head = HLGaussVNetwork(
        in_features=IN, num_bins=21, v_min=-5.0, v_max=5.0, sigma=sigma, key=getkey()
    )
    # Any leading shape: (batch, time) targets, as a PPO minibatch holds them.
    targets = jnp.clip(2 * jr.normal(getkey(), (3, T)), -3.0, 3.0)
    logits = jr.normal(getkey(), (3, T, 21))
    noise = 0.1 * jr.normal(getkey(), (3, T, 21))

    @eqx.filter_jit
    def run(head):
        probs = head.target_probs(targets)
        if head.sigma == 0:
            reference = two_hot(targets, head.support)
        else:
            reference = hl_gauss(targets, head.edges, 0.75 * 10 / 21)
        # At logits = log(target probabilities) the gradient vanishes and the
        # loss is below any perturbation.
        best = jnp.log(jnp.maximum(probs, 1e-30))
        grad = jax.grad(lambda o: jnp.sum(head.loss(o, targets)))(best)
        return dict(
            probs=probs,
            reference=reference,
            loss=head.loss(logits, targets),
            log_softmax=jax.nn.log_softmax(logits),
            grad=grad,
            best=head.loss(best, targets),
            worse=head.loss(best + noise, targets),
            value=head.value(best),
        )

    r = jax.device_get(run(head))
    assert r["probs"].shape == (3, T, 21)
    np.testing.assert_allclose(np.sum(r["probs"], -1), np.ones((3, T)), atol=1e-5)
    np.testing.assert_array_equal(r["probs"], r["reference"])
    expected = -np.sum(_f64(r["probs"]) * _f64(r["log_softmax"]), axis=-1)
    np.testing.assert_allclose(r["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(r["grad"], np.zeros(r["grad"].shape), atol=1e-5)
    assert np.all(r["best"] < r["worse"])
    # The value there is the target: exactly for two-hot; for HL-Gauss up to the
    # histogram's discretisation of the Gaussian, tiny with sigma = 0.75 bin widths
    # away from the ends (measured < 1e-5); 1e-4 for float32 sums of 21 terms.
    np.testing.assert_allclose(r["value"], targets, atol=1e-4)


def test_head_learns_a_target_by_gradient_descent(getkey):
    head = HLGaussVNetwork(
        in_features=IN, num_bins=51, v_min=-5.0, v_max=5.0, key=getkey()
    )
    # One-hot features: the head can produce any logits for each of them.
    x = jnp.eye(IN)
    targets = jnp.linspace(-2.0, 3.0, IN)

    @eqx.filter_jit
    def fit(head):
        params, static = eqx.partition(head, eqx.is_array)

        def loss(params):
            head = eqx.combine(params, static)
            return jnp.sum(head.loss(head(x), targets))

        def step(_, params):
            return jax.tree.map(lambda p, g: p - g, params, jax.grad(loss)(params))

        return eqx.combine(jax.lax.fori_loop(0, 2000, step, params), static)

    values = eqx.filter_jit(lambda h: h.value(h(x)))(fit(head))
    # Plain gradient descent on the cross-entropy closes in on the target slowly
    # (measured error < 0.01 after 2000 steps); 0.03 leaves margin.
    np.testing.assert_allclose(values, targets, atol=0.03)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="num_bins"):
        HLGaussVNetwork(in_features=IN, num_bins=1, key=getkey())
    with pytest.raises(ValueError, match="v_min < v_max"):
        HLGaussVNetwork(in_features=IN, v_min=3.0, v_max=-3.0, key=getkey())
    with pytest.raises(ValueError, match="sigma"):
        HLGaussVNetwork(in_features=IN, sigma=-1.0, key=getkey())
    with pytest.raises(ValueError, match="sigma"):
        hl_gauss(jnp.zeros(2), jnp.arange(4.0), 0.0)
