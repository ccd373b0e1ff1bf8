import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.algorithms import (
    gae,
    inverse_value_rescale,
    lambda_returns,
    n_step_targets,
    value_rescale,
)


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


def _reference_lambda_returns(rewards, next_values, terminated, done, gamma, lam):
    """The recursive definition, with a plain loop."""
    T = len(rewards)
    out = np.zeros(T)
    following = next_values[-1]
    for t in reversed(range(T)):
        if done[t] or t == T - 1:
            following = next_values[t]
        bootstrap = 0.0 if terminated[t] else 1.0
        out[t] = rewards[t] + gamma * bootstrap * (
            (1 - lam) * next_values[t] + lam * following
        )
        following = out[t]
    return out


def _episode_flags(getkey, T):
    terminated = jr.bernoulli(getkey(), 0.1, (T,))
    truncated = jr.bernoulli(getkey(), 0.1, (T,)) & ~terminated
    return terminated, truncated


def test_lambda_returns_match_reference_and_limits(getkey):
    T = 50
    rewards, next_values = jr.normal(getkey(), (T,)), jr.normal(getkey(), (T,))
    terminated, truncated = _episode_flags(getkey, T)
    done = terminated | truncated
    for lam in (0.0, 0.65, 1.0):
        got = lambda_returns(rewards, next_values, terminated, done, 0.9, lam)
        ref = _reference_lambda_returns(
            *map(np.asarray, (rewards, next_values, terminated, done)), 0.9, lam
        )
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # lambda = 0: one-step TD targets.
    td = rewards + 0.9 * jnp.where(terminated, 0.0, next_values)
    got = lambda_returns(rewards, next_values, terminated, done, 0.9, 0.0)
    np.testing.assert_allclose(got, td, rtol=1e-5, atol=1e-6)


def _reference_n_step(rewards, values, terminated, truncated, gamma, n):
    T = len(rewards)
    targets, valid = np.zeros(T), np.zeros(T, bool)
    for t in range(T):
        if truncated[t]:
            continue  # successor not in the sequence
        total, k = 0.0, 0
        while True:
            j = t + k
            if k == n:
                if j < T:
                    targets[t], valid[t] = total + gamma**k * values[j], True
                break
            if j >= T:
                break
            if k > 0 and truncated[j]:
                targets[t], valid[t] = total + gamma**k * values[j], True
                break
            total += gamma**k * rewards[j]
            if terminated[j]:
                targets[t], valid[t] = total, True
                break
            k += 1
    return targets, valid


@pytest.mark.parametrize("n", [1, 3, 5])
def test_n_step_targets_match_reference(getkey, n):
    T = 60
    rewards, values = jr.normal(getkey(), (T,)), jr.normal(getkey(), (T,))
    terminated, truncated = _episode_flags(getkey, T)
    targets, valid = n_step_targets(rewards, values, terminated, truncated, 0.95, n)
    ref_targets, ref_valid = _reference_n_step(
        *map(np.asarray, (rewards, values, terminated, truncated)), 0.95, n
    )
    np.testing.assert_array_equal(valid, ref_valid)
    np.testing.assert_allclose(targets, ref_targets, rtol=1e-5, atol=1e-5)
    # The last n steps run past the end unless their episode terminated first.
    assert not bool(valid[-1]) or bool(terminated[-1])
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        n_step_targets(rewards, values, terminated, truncated, 0.95, 0)


def test_value_rescaling_is_inverted_exactly():
    x = jnp.linspace(-1000.0, 1000.0, 201)
    h = value_rescale(x)
    # h compresses: |h(x)| ~ sqrt(|x|) for large |x|, and is odd and increasing.
    assert float(jnp.max(jnp.abs(h))) < 40
    assert bool(jnp.all(jnp.diff(h) > 0))
    np.testing.assert_allclose(inverse_value_rescale(h), x, rtol=1e-4, atol=1e-3)
