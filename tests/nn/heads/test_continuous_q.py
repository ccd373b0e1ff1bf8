"""Continuous-action Q heads: Q(x, a) from concat(x, a) against NumPy, the twin
critics (independent, min as the value, summed losses)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.nn.heads._continuous_q import ContinuousQNetwork, TwinContinuousQNetwork


T, IN, A = 6, 5, 2
# float32 vs float64 of a few affine layers of O(1) numbers.
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _reference(head, x, a):
    """ReLU MLP on concat(x, a), then the output layer (float64)."""
    h = np.concatenate([_f64(x), _f64(a)], axis=-1)
    for layer in head.mlp.layers if head.mlp is not None else ():
        h = np.maximum(h @ _f64(layer.weight).T + _f64(layer.bias), 0)
    return h @ _f64(head.linear.weight[0]) + _f64(head.linear.bias[0])


@pytest.mark.parametrize("hidden", [(), (8, 7)])
def test_q_of_the_concatenation(getkey, hidden):
    head = ContinuousQNetwork(in_features=IN, action_dim=A, hidden=hidden, key=getkey())
    x, a = jr.normal(getkey(), (T, IN)), jr.normal(getkey(), (T, A))
    out, shifted = eqx.filter_jit(lambda h: (h(x, a), h(x, a + 1)))(head)
    assert out.shape == (T,)
    np.testing.assert_allclose(out, _reference(head, x, a), rtol=RTOL, atol=ATOL)
    assert not np.allclose(out, shifted)  # the action matters


def test_q_value_and_loss_without_target_gradient(getkey):
    head = ContinuousQNetwork(in_features=IN, action_dim=A, key=getkey())
    out, targets = jr.normal(getkey(), (3, T)), jr.normal(getkey(), (3, T))

    @eqx.filter_jit
    def run(head):
        grad = jax.grad(lambda t: jnp.sum(head.loss(out, t)))(targets)
        return head.value(out), head.loss(out, targets), grad

    value, loss, grad = jax.device_get(run(head))
    np.testing.assert_array_equal(value, out)
    expected = 0.5 * (_f64(out) - _f64(targets)) ** 2
    np.testing.assert_allclose(loss, expected, rtol=RTOL, atol=1e-7)
    assert np.all(grad == 0)


def test_twin_critics(getkey):
    head = TwinContinuousQNetwork(
        in_features=IN, action_dim=A, hidden=(8,), key=getkey()
    )
    x, a = jr.normal(getkey(), (T, IN)), jr.normal(getkey(), (T, A))
    targets = jr.normal(getkey(), (T,))

    @eqx.filter_jit
    def run(head):
        out = head(x, a)
        grads = eqx.filter_grad(lambda h: jnp.sum(h.loss(h(x, a), targets)))(head)
        grad_q1 = eqx.filter_grad(lambda q: jnp.sum(q.loss(q(x, a), targets)))(head.q1)
        return out, head.value(out), head.loss(out, targets), grads, grad_q1

    out, value, loss, grads, grad_q1 = jax.device_get(run(head))
    assert out.shape == (T, 2) and head.action_dim == A
    np.testing.assert_allclose(
        out[:, 0], _reference(head.q1, x, a), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        out[:, 1], _reference(head.q2, x, a), rtol=RTOL, atol=ATOL
    )
    # Independently initialised: different parameters, different estimates.
    assert not np.allclose(head.q1.linear.weight, head.q2.linear.weight)
    assert not np.allclose(head.q1.mlp.layers[0].weight, head.q2.mlp.layers[0].weight)
    assert np.all(out[:, 0] != out[:, 1])
    # The value is the min (clipped double Q); the loss the sum of both critics'.
    np.testing.assert_array_equal(value, np.min(out, -1))
    expected = 0.5 * np.sum((_f64(out) - _f64(targets)[:, None]) ** 2, -1)
    np.testing.assert_allclose(loss, expected, rtol=RTOL, atol=1e-7)
    # Each critic gets the gradient of its own squared error.
    for g, g1 in zip(jax.tree.leaves(grads.q1), jax.tree.leaves(grad_q1)):
        np.testing.assert_allclose(g, g1, rtol=RTOL, atol=1e-6)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="action_dim"):
        ContinuousQNetwork(in_features=IN, action_dim=0, key=getkey())
    with pytest.raises(ValueError, match="hidden"):
        TwinContinuousQNetwork(
            in_features=IN, action_dim=A, hidden=(4, 0), key=getkey()
        )
