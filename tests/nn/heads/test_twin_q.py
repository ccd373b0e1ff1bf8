"""TwinDiscreteQNetwork: two independent discrete critics on the same input, the
min as the value, both regressed on the same target."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.nn.heads import TwinDiscreteQNetwork


B, T, IN, A = 2, 5, 4, 3
# float32 vs float64 of a few affine layers of O(1) numbers.
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _reference(mlp, q, x):
    """Optional ReLU MLP, then the output layer (float64): `(T, A)`."""
    h = _f64(x)
    for layer in mlp.layers if mlp is not None else ():
        h = np.maximum(h @ _f64(layer.weight).T + _f64(layer.bias), 0)
    return h @ _f64(q.linear.weight).T + _f64(q.linear.bias)


@pytest.mark.parametrize("hidden", [(), (8, 7)])
def test_twin_values(getkey, hidden):
    head = TwinDiscreteQNetwork(
        in_features=IN, action_dim=A, hidden=hidden, key=getkey()
    )
    x = jr.normal(getkey(), (T, IN))
    out, value = jax.device_get(
        eqx.filter_jit(lambda h: (h(x), h.q_values(h(x))))(head)
    )
    assert out.shape == (T, A, 2) and head.action_dim == A
    np.testing.assert_allclose(
        out[..., 0], _reference(head.mlp1, head.q1, x), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        out[..., 1], _reference(head.mlp2, head.q2, x), rtol=RTOL, atol=ATOL
    )
    # Independently initialised: different estimates; the value is their min.
    assert np.all(out[..., 0] != out[..., 1])
    np.testing.assert_array_equal(value, np.min(out, -1))


def test_loss_of_the_taken_action(getkey):
    head = TwinDiscreteQNetwork(in_features=IN, action_dim=A, key=getkey())
    x = jr.normal(getkey(), (B, T, IN))
    actions = jr.randint(getkey(), (B, T), 0, A)
    targets = jr.normal(getkey(), (B, T))

    @eqx.filter_jit
    def run(head):
        out = jax.vmap(head)(x)
        loss = head.loss(out, actions, targets)
        out_grad = jax.grad(lambda o: jnp.sum(head.loss(o, actions, targets)))(out)
        target_grad = jax.grad(lambda t: jnp.sum(head.loss(out, actions, t)))(targets)
        grads = eqx.filter_grad(
            lambda h: jnp.sum(h.loss(jax.vmap(h)(x), actions, targets))
        )(head)
        grad_q1 = eqx.filter_grad(
            lambda q: jnp.sum(q.loss(jax.vmap(q)(x), actions, targets))
        )(head.q1)
        return out, loss, out_grad, target_grad, grads, grad_q1

    out, loss, out_grad, target_grad, grads, grad_q1 = jax.device_get(run(head))
    taken = np.take_along_axis(_f64(out), np.asarray(actions)[..., None, None], -2)
    error = taken[..., 0, :] - _f64(targets)[..., None]  # (B, T, 2)
    np.testing.assert_allclose(loss, 0.5 * np.sum(error**2, -1), rtol=RTOL, atol=1e-6)
    # Only the taken action's two values get a gradient, each its own error.
    mask = np.eye(A, dtype=bool)[np.asarray(actions)]  # (B, T, A)
    np.testing.assert_allclose(
        out_grad[mask], error.reshape(-1, 2), rtol=RTOL, atol=1e-6
    )
    assert np.all(out_grad[~mask] == 0)
    assert np.all(target_grad == 0)
    # Critic 1's parameters get exactly the gradient of its own squared error.
    for g, g1 in zip(jax.tree.leaves(grads.q1), jax.tree.leaves(grad_q1)):
        np.testing.assert_allclose(g, g1, rtol=RTOL, atol=1e-6)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="action_dim"):
        TwinDiscreteQNetwork(in_features=IN, action_dim=0, key=getkey())
    with pytest.raises(ValueError, match="hidden"):
        TwinDiscreteQNetwork(in_features=IN, action_dim=A, hidden=(4, 0), key=getkey())
