"""VNetwork: the value-head interface (`value`, `loss`) on any leading shape."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from memrl_eqx.nn.heads._value import VNetwork


T, IN = 6, 5


def _f64(a):
    return np.asarray(a, np.float64)


def test_value_and_loss(getkey):
    head = VNetwork(in_features=IN, key=getkey())
    x = jr.normal(getkey(), (T, IN))
    # (batch, time) outputs and targets, as a PPO minibatch holds them.
    out, targets = jr.normal(getkey(), (3, T)), jr.normal(getkey(), (3, T))

    @eqx.filter_jit
    def run(head):
        grads = jax.grad(lambda o, t: jnp.sum(head.loss(o, t)), argnums=(0, 1))
        return head(x), head.value(out), head.loss(out, targets), grads(out, targets)

    values, same, loss, (grad_out, grad_targets) = jax.device_get(run(head))
    w, b = _f64(head.linear.weight[0]), _f64(head.linear.bias[0])
    # float32 affine map of O(1) numbers against float64.
    np.testing.assert_allclose(values, _f64(x) @ w + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(same, out)
    error = _f64(out) - _f64(targets)
    np.testing.assert_allclose(loss, 0.5 * error**2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad_out, error, rtol=1e-6, atol=1e-7)
    assert np.all(grad_targets == 0)
