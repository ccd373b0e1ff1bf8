"""C51 (Bellemare et al. 2017): the distributional Bellman projection on
hand-computed cases and against a plain loop of the paper's Algorithm 1; the head's
Q-values, target and cross-entropy loss against NumPy."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.nn.heads._c51 import C51QNetwork, categorical_projection
from memrl_eqx.nn.heads._hl_gauss import two_hot


T, IN, A = 5, 4, 3
SUPPORT = jnp.arange(5.0)  # atoms 0, 1, 2, 3, 4: Δz = 1
# float32 vs exact hand values / float64 loops: sums of a few products of O(1)
# numbers, so 1e-6 absolute (1e-5 relative for the larger losses).
ATOL = 1e-6

project = jax.jit(categorical_projection)


def _f64(a):
    return np.asarray(a, np.float64)


def _softmax(logits):
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _algorithm_1(probs, rewards, discounts, support):
    """Bellemare et al. 2017, Algorithm 1, one distribution at a time (float64)."""
    v_min, v_max = support[0], support[-1]
    delta = support[1] - support[0]
    out = np.zeros_like(probs)
    for index in np.ndindex(rewards.shape):
        for j, z in enumerate(support):
            tz = min(max(rewards[index] + discounts[index] * z, v_min), v_max)
            b = (tz - v_min) / delta
            lo, hi = int(np.floor(b)), int(np.ceil(b))
            if lo == hi:  # lands on an atom: all its mass goes there
                out[index + (lo,)] += probs[index + (j,)]
            else:
                out[index + (lo,)] += probs[index + (j,)] * (hi - b)
                out[index + (hi,)] += probs[index + (j,)] * (b - lo)
    return out


def test_projection_shift_by_one_atom_clips_the_top():
    p = jnp.array([0.1, 0.2, 0.3, 0.15, 0.25])
    out = project(p, jnp.array(1.0), jnp.array(1.0), SUPPORT)
    np.testing.assert_allclose(out, [0.0, 0.1, 0.2, 0.3, 0.4], atol=ATOL)
    out = project(p, jnp.array(-1.0), jnp.array(1.0), SUPPORT)
    np.testing.assert_allclose(out, [0.3, 0.3, 0.15, 0.25, 0.0], atol=ATOL)


def test_projection_clips_at_the_ends():
    p = jnp.array([0.1, 0.2, 0.3, 0.15, 0.25])
    np.testing.assert_allclose(
        project(p, jnp.array(-50.0), jnp.array(0.9), SUPPORT), [1, 0, 0, 0, 0], atol=0
    )
    np.testing.assert_allclose(
        project(p, jnp.array(50.0), jnp.array(0.9), SUPPORT), [0, 0, 0, 0, 1], atol=0
    )


def test_projection_discount_zero_is_a_point_mass_split_between_two_atoms():
    p = jnp.array([0.1, 0.2, 0.3, 0.15, 0.25])
    out = project(p, jnp.array(1.25), jnp.array(0.0), SUPPORT)
    np.testing.assert_allclose(out, [0.0, 0.75, 0.25, 0.0, 0.0], atol=ATOL)
    # On an atom, all of it goes there; it is the two-hot encoding of the reward.
    out = project(p, jnp.array(3.0), jnp.array(0.0), SUPPORT)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.0, 1.0, 0.0], atol=ATOL)
    rewards = jnp.array([-7.0, 0.3, 2.5, 3.99, 9.0])
    out = project(jnp.stack([p] * 5), rewards, jnp.zeros(5), SUPPORT)
    np.testing.assert_allclose(out, jax.jit(two_hot)(rewards, SUPPORT), atol=ATOL)


def test_projection_by_hand_with_a_discount():
    # Atom 3 (z = 3) with r = 0.2, γ = 0.5 lands on 1.7: 0.3 to atom 1, 0.7 to 2.
    # Atom 0 lands on 0.2: 0.8 to atom 0, 0.2 to atom 1.
    p = jnp.array([0.5, 0.0, 0.0, 0.5, 0.0])
    out = project(p, jnp.array(0.2), jnp.array(0.5), SUPPORT)
    np.testing.assert_allclose(out, [0.4, 0.25, 0.35, 0.0, 0.0], atol=ATOL)


def test_projection_matches_algorithm_1_and_conserves_mass(getkey):
    # Atoms exact in float32 (spacing 0.5), so that the loop's index arithmetic
    # and the head's distances to the atoms agree to rounding.
    support = np.linspace(-10.0, 10.0, 41)
    probs = _softmax(_f64(jr.normal(getkey(), (2, 7, 41))))
    rewards = 4 * _f64(jr.normal(getkey(), (2, 7)))
    discounts = _f64(jr.uniform(getkey(), (2, 7)))
    # Include the special cases: terminal (0), undiscounted (1), on-atom landings.
    discounts[0, :3] = [0.0, 1.0, 0.5]
    rewards[0, 2] = 0.4
    f32 = [jnp.asarray(a, jnp.float32) for a in (probs, rewards, discounts, support)]
    out = project(*f32)
    expected = _algorithm_1(*[_f64(a) for a in f32])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(np.sum(_f64(out), -1), np.ones((2, 7)), atol=1e-5)


def _head(key, **kwargs):
    return C51QNetwork(
        in_features=IN,
        action_dim=A,
        num_atoms=5,
        v_min=0.0,
        v_max=4.0,
        key=key,
        **kwargs,
    )


def test_c51_head_q_values_loss_and_gradients_against_numpy(getkey):
    head = _head(getkey())
    x = jr.normal(getkey(), (T, IN))
    actions = jnp.arange(T) % A
    targets = jnp.asarray(_softmax(_f64(jr.normal(getkey(), (T, 5)))), jnp.float32)

    @eqx.filter_jit
    def run(head):
        out = head(x)
        grads = jax.grad(
            lambda o, t: jnp.sum(head.loss(o, actions, t)), argnums=(0, 1)
        )(out, targets)
        return (
            head.support,
            out,
            head.q_values(out),
            head.loss(out, actions, targets),
            grads,
        )

    support, out, q, loss, (grad_out, grad_targets) = jax.device_get(run(head))
    np.testing.assert_allclose(support, SUPPORT)
    assert out.shape == (T, A, 5)
    logits = _f64(x) @ _f64(head.linear.weight).T + _f64(head.linear.bias)
    logits = logits.reshape(T, A, 5)
    np.testing.assert_allclose(out, logits, rtol=1e-5, atol=1e-5)
    p = _softmax(logits)
    np.testing.assert_allclose(q, p @ np.arange(5.0), rtol=1e-5, atol=1e-6)
    taken = np.eye(A, dtype=bool)[np.asarray(actions)]
    expected = -np.sum(_f64(targets) * np.log(p[taken]), axis=-1)
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
    # d CE / d logits = softmax - target for the taken action, 0 elsewhere; the
    # targets get no gradient.
    np.testing.assert_allclose(grad_out[taken], p[taken] - _f64(targets), atol=1e-6)
    assert np.all(grad_out[~taken] == 0) and np.all(grad_targets == 0)


def test_c51_target_projects_the_greedy_next_distribution(getkey):
    head = _head(getkey())
    next_out = 3 * jr.normal(getkey(), (2, T, A, 5))  # any leading shape
    rewards = jr.normal(getkey(), (2, T))
    discounts = 0.9 * (np.asarray(jr.uniform(getkey(), (2, T))) > 0.3)
    discounts = jnp.asarray(discounts, jnp.float32)

    @eqx.filter_jit
    def run(head):
        greedy = head.target(next_out, rewards, discounts)
        # Given next actions (double DQN) are used instead of the greedy ones.
        other = (jnp.argmax(head.q_values(next_out), -1) + 1) % A
        given = head.target(next_out, rewards, discounts, other)
        # No gradient flows into the target.
        grad = jax.grad(lambda n: jnp.sum(head.target(n, rewards, discounts)))(next_out)
        return greedy, other, given, grad

    greedy_target, other, given_target, grad = jax.device_get(run(head))
    probs = _softmax(_f64(next_out))
    for actions, target in [
        (np.argmax(probs @ np.arange(5.0), -1), greedy_target),
        (np.asarray(other), given_target),
    ]:
        chosen = np.take_along_axis(probs, actions[..., None, None], axis=-2)
        expected = _algorithm_1(
            chosen[..., 0, :], _f64(rewards), _f64(discounts), np.arange(5.0)
        )
        np.testing.assert_allclose(target, expected, atol=1e-5)
    assert np.all(grad == 0)


def test_c51_loss_is_a_plain_method_under_jit_and_vmap(getkey):
    """The Flax original's `loss` failed on the unbound module; ours is a method
    of the PyTree, usable inside a jitted, batched loss."""
    head = _head(getkey())
    xs = jr.normal(getkey(), (2, T, IN))
    actions = jr.randint(getkey(), (2, T), 0, A)
    rewards, discounts = jr.normal(getkey(), (2, T)), jnp.full((2, T), 0.9)

    @eqx.filter_jit
    def loss(head):
        out = jax.vmap(head)(xs)
        targets = head.target(out, rewards, discounts)
        return jnp.mean(head.loss(out, actions, targets))

    value, grads = eqx.filter_value_and_grad(loss)(head)
    assert np.isfinite(value) and np.any(np.asarray(grads.linear.weight) != 0)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="num_atoms"):
        C51QNetwork(in_features=IN, action_dim=A, num_atoms=1, key=getkey())
    with pytest.raises(ValueError, match="v_min < v_max"):
        C51QNetwork(in_features=IN, action_dim=A, v_min=1.0, v_max=1.0, key=getkey())
    with pytest.raises(ValueError, match="action_dim"):
        C51QNetwork(in_features=IN, action_dim=0, key=getkey())
