"""DiscreteQNetwork: Q-values, the one-step target (greedy or given next actions)
and the ½ squared-error loss of the taken action, on any leading shape."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from memrl_eqx.nn.heads._q import DiscreteQNetwork


B, T, IN, A = 2, 5, 4, 3
# float32 sums and products of O(1) numbers against float64.
RTOL, ATOL = 1e-5, 1e-6


def _f64(a):
    return np.asarray(a, np.float64)


def test_target_and_loss(getkey):
    head = DiscreteQNetwork(in_features=IN, action_dim=A, key=getkey())
    x = jr.normal(getkey(), (B, T, IN))
    next_out = jr.normal(getkey(), (B, T, A))
    rewards = jr.normal(getkey(), (B, T))
    discounts = 0.9 * (np.asarray(jr.uniform(getkey(), (B, T))) > 0.3)
    discounts = jnp.asarray(discounts, jnp.float32)
    next_actions = jr.randint(getkey(), (B, T), 0, A)
    actions = jr.randint(getkey(), (B, T), 0, A)

    @eqx.filter_jit
    def run(head):
        out = jax.vmap(head)(x)
        target = head.target(next_out, rewards, discounts)
        return dict(
            out=out,
            q=head.q_values(out),
            target=target,
            # Given next actions: double DQN (the online network's argmax).
            given=head.target(next_out, rewards, discounts, next_actions),
            target_grad=jax.grad(lambda n: jnp.sum(head.target(n, rewards, discounts)))(
                next_out
            ),
            loss=head.loss(out, actions, target),
            grad=jax.grad(lambda o: jnp.sum(head.loss(o, actions, target)))(out),
        )

    r = jax.device_get(run(head))
    assert r["out"].shape == (B, T, A)
    np.testing.assert_array_equal(r["q"], r["out"])
    expected = _f64(rewards) + _f64(discounts) * np.max(_f64(next_out), -1)
    np.testing.assert_allclose(r["target"], expected, rtol=RTOL, atol=ATOL)
    chosen = np.take_along_axis(_f64(next_out), np.asarray(next_actions)[..., None], -1)
    expected = _f64(rewards) + _f64(discounts) * chosen[..., 0]
    np.testing.assert_allclose(r["given"], expected, rtol=RTOL, atol=ATOL)
    assert np.all(r["target_grad"] == 0)

    q = np.take_along_axis(_f64(r["out"]), np.asarray(actions)[..., None], -1)[..., 0]
    error = q - _f64(r["target"])
    np.testing.assert_allclose(r["loss"], 0.5 * error**2, rtol=RTOL, atol=ATOL)
    taken = np.eye(A, dtype=bool)[np.asarray(actions)]
    np.testing.assert_allclose(r["grad"][taken], error.ravel(), rtol=RTOL, atol=ATOL)
    assert np.all(r["grad"][~taken] == 0)
