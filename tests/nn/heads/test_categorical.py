"""Categorical policy head: log-probabilities and entropy against the softmax
formulas (float64 NumPy), with any batch of sequences."""

import equinox as eqx
import jax
import jax.random as jr
import numpy as np

from memrl_eqx.nn.heads._categorical import Categorical


T, IN, A = 6, 5, 4
DRAWS = 4000


def test_log_prob_entropy_mode_and_samples_match_the_formula(getkey):
    head = Categorical(in_features=IN, action_dim=A, scale=1.0, key=getkey())
    x = jr.normal(getkey(), (2, T, IN))
    actions = jr.randint(getkey(), (2, T), 0, A)

    @eqx.filter_jit
    def run(head, key):
        dist = jax.vmap(head)(x)
        assert dist.batch_shape == (2, T)
        samples = head(x[0, :1]).sample(seed=key, sample_shape=DRAWS)
        return dist.log_prob(actions), dist.entropy(), dist.mode(), samples

    log_prob, entropy, mode, samples = jax.device_get(run(head, getkey()))
    w = np.asarray(head.linear.weight, np.float64)
    logits = np.asarray(x, np.float64) @ w.T + np.asarray(head.linear.bias)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected = np.log(np.take_along_axis(p, np.asarray(actions)[..., None], -1)[..., 0])
    # float32 log-softmax of O(1) logits: 1e-5 relative.
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(entropy, -(p * np.log(p)).sum(-1), rtol=1e-5)
    np.testing.assert_array_equal(mode, np.argmax(logits, -1))
    # Samples are valid actions with the policy's frequencies (4000 draws of one
    # step: standard error <= 0.008, so 0.04 is five of them).
    samples = np.asarray(samples).ravel()
    assert np.all((samples >= 0) & (samples < A))
    np.testing.assert_allclose(
        np.bincount(samples, minlength=A) / DRAWS, p[0, 0], atol=0.04
    )
