import jax.numpy as jnp
import jax.random as jr
import numpy as np

from memrl_eqx.algorithms import gae


def _reference_gae(rewards, values, next_values, terminated, done, gamma, lam):
    """A plain loop, written from the definition."""
    T = len(rewards)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        bootstrap = 0.0 if terminated[t] else next_values[t]
        delta = rewards[t] + gamma * bootstrap - values[t]
        running = delta + gamma * lam * (0.0 if done[t] else 1.0) * running
        adv[t] = running
    return adv, adv + np.asarray(values)


def test_gae_matches_reference(getkey):
    T = 40
    rewards = jr.normal(getkey(), (T,))
    values = jr.normal(getkey(), (T,))
    next_values = jr.normal(getkey(), (T,))
    terminated = jr.bernoulli(getkey(), 0.1, (T,))
    truncated = jr.bernoulli(getkey(), 0.1, (T,)) & ~terminated
    done = terminated | truncated
    adv, ret = gae(rewards, values, next_values, terminated, done, 0.97, 0.9)
    ref_adv, ref_ret = _reference_gae(
        np.asarray(rewards),
        np.asarray(values),
        np.asarray(next_values),
        np.asarray(terminated),
        np.asarray(done),
        0.97,
        0.9,
    )
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-5)


def test_gae_truncation_bootstraps_termination_does_not():
    # One step, reward 1, next value 10, gamma 0.5.
    args = (jnp.ones(1), jnp.zeros(1), jnp.full(1, 10.0))
    truncated_adv, _ = gae(*args, jnp.zeros(1, bool), jnp.ones(1, bool), 0.5, 1.0)
    terminated_adv, _ = gae(*args, jnp.ones(1, bool), jnp.ones(1, bool), 0.5, 1.0)
    assert float(truncated_adv[0]) == 6.0  # 1 + 0.5 * 10
    assert float(terminated_adv[0]) == 1.0
