"""`MoE` and `TopKRouter` against a hand loop, and the auxiliary-loss mechanism
(`auxiliary_loss`, `clear_auxiliary`): the Switch/ST-MoE losses from the carried
statistics, batch pooling, and that optimising the loss balances the experts."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import optax
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._auxiliary import (
    auxiliary_loss,
    auxiliary_statistics,
    clear_auxiliary,
)
from memrl_eqx.nn._moe import MoE, TopKRouter

from ..helpers import tree_allclose


IN, OUT, T = 4, 3, 10
# float32 model against a float64 NumPy reference of the same formulas: a few
# float32 roundings per value of size O(1), hence 1e-5 relative and absolute.
RTOL, ATOL = 1e-5, 1e-5

_run = eqx.filter_jit(lambda model, *args: model(*args))


def _gru_moe(key, num_experts=3, k=2, renormalize=True):
    keys = jr.split(key, num_experts + 1)
    experts = [
        mnn.RNN(mnn.GRUCell(in_features=IN, features=OUT, key=k_)) for k_ in keys[:-1]
    ]
    router = TopKRouter(
        in_features=IN,
        num_experts=num_experts,
        k=k,
        renormalize=renormalize,
        key=keys[-1],
    )
    return MoE(experts, router)


def _mlp_moe(key, num_experts=4, k=1):
    keys = jr.split(key, num_experts + 1)
    experts = [mnn.MLP(in_features=IN, features=(OUT,), key=k_) for k_ in keys[:-1]]
    router = TopKRouter(in_features=IN, num_experts=num_experts, k=k, key=keys[-1])
    return MoE(experts, router)


def _router_reference(router, xs):
    """Logits, softmax, top-k and renormalised weights in float64 NumPy."""
    w = np.asarray(router.linear.weight, np.float64)
    b = np.asarray(router.linear.bias, np.float64)
    logits = np.asarray(xs, np.float64) @ w.T + b
    shifted = logits - logits.max(-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    top = np.argsort(-probs, axis=-1)[:, : router.k]
    return logits, probs, top


@pytest.mark.parametrize("k, renormalize", [(1, True), (2, True), (1, False)])
def test_output_equals_hand_loop(k, renormalize, getkey):
    model = _gru_moe(getkey(), num_experts=3, k=k, renormalize=renormalize)
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 6])].set(True)
    (carries, statistics), ys = _run(model, model.init_carry(), xs, resets)

    # Each expert on its own over the whole sequence (recurrent experts see every
    # step), then a per-step mix of the top-k.
    expert_ys = [
        np.asarray(_run(e, e.init_carry(), xs, resets)[1], np.float64)
        for e in model.experts
    ]
    logits, probs, top = _router_reference(model.router, xs)
    expected = []
    for t in range(T):
        chosen = probs[t, top[t]]
        weights = chosen / chosen.sum() if renormalize else chosen
        expected.append(sum(w * expert_ys[e][t] for w, e in zip(weights, top[t])))
    np.testing.assert_allclose(ys, np.stack(expected), rtol=RTOL, atol=ATOL)

    # The expert carries are the experts' own; the statistics are the sums.
    for expert, carry in zip(model.experts, carries):
        own, _ = _run(expert, expert.init_carry(), xs, resets)
        assert tree_allclose(carry, own)
    counts = np.zeros(3)
    for row in top:
        counts[row] += 1
    np.testing.assert_allclose(statistics.assignments, counts)
    np.testing.assert_allclose(statistics.count, T)
    np.testing.assert_allclose(statistics.probabilities, probs.sum(0), rtol=RTOL)
    lse = np.log(np.exp(logits).sum(-1))
    np.testing.assert_allclose(statistics.z, np.sum(lse**2), rtol=RTOL)


def test_router_weights_and_indices(getkey):
    router = TopKRouter(in_features=IN, num_experts=5, k=3, key=getkey())
    router = eqx.tree_at(lambda r: r.linear.bias, router, jr.normal(getkey(), (5,)))
    x = jr.normal(getkey(), (IN,))
    weights, indices, statistics = router(x)
    _, probs, top = _router_reference(router, x[None])
    np.testing.assert_array_equal(indices, top[0])
    chosen = probs[0, top[0]]
    np.testing.assert_allclose(weights, chosen / chosen.sum(), rtol=RTOL)
    assert jnp.all(weights[:-1] >= weights[1:])
    np.testing.assert_allclose(jnp.sum(weights), 1.0, rtol=RTOL)
    np.testing.assert_allclose(statistics.assignments.sum(), 3.0)


def test_statistics_are_not_reset_and_do_not_affect_outputs(getkey):
    model = _gru_moe(getkey())
    xs = jr.normal(getkey(), (T, IN))
    no_resets = jnp.zeros(T, bool)
    all_resets = jnp.ones(T, bool)
    carry = model.init_carry()
    (_, s1), _ = _run(model, carry, xs, no_resets)
    (_, s2), _ = _run(model, carry, xs, all_resets)
    assert tree_allclose(s1, s2)
    # Resets of the experts do not touch statistics already accumulated.
    (_, s3), _ = _run(model, (carry[0], s1), xs, all_resets)
    assert tree_allclose(s3, s1.add(s1), rtol=RTOL, atol=ATOL)
    # Outputs are the same whatever statistics come in.
    other = jtu.tree_map(lambda a: a + 7.0, s1)
    _, ys1 = _run(model, carry, xs, no_resets)
    _, ys2 = _run(model, (carry[0], other), xs, no_resets)
    assert jnp.array_equal(ys1, ys2)


def _pooled_reference_loss(router, xs):
    """Switch load balancing + ST-MoE z-loss over the tokens `xs`, float64."""
    logits, probs, top = _router_reference(router, xs)
    counts = np.zeros(router.num_experts)
    for row in top:
        counts[row] += 1
    f = counts / counts.sum()
    p = probs.mean(0)
    z = np.mean(np.log(np.exp(logits).sum(-1)) ** 2)
    balance = router.num_experts * np.sum(f * p)
    return router.balance_coefficient * balance + router.z_loss_coefficient * z


def test_auxiliary_loss_of_a_vmapped_carry_pools_the_batch(getkey):
    """The loss of a batch of carries is the loss of the pooled statistics: that
    of every token of the batch routed at once, not a mean of per-sequence
    losses (which differs, the loss being nonlinear in the sums)."""
    model = _mlp_moe(getkey(), num_experts=4, k=2)
    router = eqx.tree_at(
        lambda r: r.linear.bias, model.router, jnp.array([1.0, 0.5, 0.0, -0.5])
    )
    model = eqx.tree_at(lambda m: m.router, model, router)
    B = 5
    xs = jr.normal(getkey(), (B, T, IN)) * 2
    resets = jr.bernoulli(getkey(), 0.3, (B, T))
    carry = jax.vmap(lambda _: model.init_carry())(jnp.arange(B))
    new_carry, _ = eqx.filter_jit(jax.vmap(model))(carry, xs, resets)
    batched = auxiliary_loss(new_carry)
    expected = _pooled_reference_loss(model.router, xs.reshape(B * T, IN))
    np.testing.assert_allclose(batched, expected, rtol=RTOL, atol=1e-7)
    per_sequence = np.mean(
        [_pooled_reference_loss(model.router, xs[b]) for b in range(B)]
    )
    assert abs(per_sequence - expected) > 1e-6
    # The same as one statistics object summed by hand.
    (stats,) = auxiliary_statistics(new_carry)
    summed = jtu.tree_map(lambda a: jnp.sum(a, 0), stats)
    np.testing.assert_allclose(summed.loss(), batched, rtol=RTOL)


def test_auxiliary_loss_is_zero_without_statistics(getkey):
    gru = mnn.RNN(mnn.GRUCell(in_features=IN, features=OUT, key=getkey()))
    loss = auxiliary_loss(gru.init_carry())
    assert loss.shape == () and loss == 0.0
    assert auxiliary_loss(()) == 0.0
    assert auxiliary_loss(None) == 0.0
    # Cleared (empty) statistics give zero too, with finite gradients.
    model = _mlp_moe(getkey())
    assert auxiliary_loss(model.init_carry()) == 0.0


def test_clear_auxiliary_zeroes_only_statistics(getkey):
    B = 2
    xs = jr.normal(getkey(), (B, T, IN))
    # Two MoEs in a stack (an MLP in between widens OUT back to IN).
    model = mnn.Stack(
        [
            _gru_moe(getkey()),
            mnn.MLP(in_features=OUT, features=(IN,), key=getkey()),
            _mlp_moe(getkey(), k=2),
        ]
    )
    carry = jax.vmap(lambda _: model.init_carry())(jnp.arange(B))
    carry, _ = eqx.filter_jit(jax.vmap(model))(carry, xs, jnp.zeros((B, T), bool))
    assert len(auxiliary_statistics(carry)) == 2
    assert auxiliary_loss(carry) > 0
    cleared = clear_auxiliary(carry)
    assert jtu.tree_structure(cleared) == jtu.tree_structure(carry)
    for stats in auxiliary_statistics(cleared):
        assert all(jnp.all(leaf == 0) for leaf in jtu.tree_leaves(stats))
        assert stats.count.shape == (B,)
    assert auxiliary_loss(cleared) == 0.0
    # The expert carries are untouched.
    gru_carries = lambda c: c[0][0]
    assert tree_allclose(gru_carries(cleared), gru_carries(carry))


def test_gradients_flow_through_probabilities_not_counts(getkey):
    model = _gru_moe(getkey())
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool)

    @eqx.filter_jit
    @eqx.filter_grad
    def grads(model):
        carry, _ = model(model.init_carry(), xs, resets)
        return auxiliary_loss(carry)

    g = grads(model)
    assert jnp.any(g.router.linear.weight != 0)
    for expert in g.experts:
        leaves = jtu.tree_leaves(eqx.filter(expert, eqx.is_inexact_array))
        assert all(jnp.all(leaf == 0) for leaf in leaves)

    (_, statistics), _ = _run(model, model.init_carry(), xs, resets)
    g_stats = jax.grad(lambda s: s.loss())(statistics)
    assert jnp.all(g_stats.assignments == 0)
    assert jnp.all(g_stats.probabilities != 0)
    assert g_stats.z != 0


def _train_router(key, *, balance_coefficient, z_loss_coefficient):
    """Trains, by Adam on `auxiliary_loss` alone (400 steps, lr 3e-2, 160 fresh
    random tokens a step), the router of a top-1 MoE of E = 4 experts whose bias
    sends every token to expert 0. Returns the statistics of 640 held-out tokens
    before and after, pooled."""
    E, B = 4, 16
    k_model, k_router, k_train, k_test = jr.split(key, 4)
    model = _mlp_moe(k_model, num_experts=E, k=1)
    router = TopKRouter(
        in_features=IN,
        num_experts=E,
        k=1,
        balance_coefficient=balance_coefficient,
        z_loss_coefficient=z_loss_coefficient,
        key=k_router,
    )
    router = eqx.tree_at(lambda r: r.linear.bias, router, jnp.array([3.0, 0, 0, 0]))

    def carry_of(router, xs):
        moe = eqx.tree_at(lambda m: m.router, model, router)
        batch = jnp.arange(xs.shape[0])
        carry = clear_auxiliary(jax.vmap(lambda _: moe.init_carry())(batch))
        carry, _ = jax.vmap(moe)(carry, xs, jnp.zeros(xs.shape[:2], bool))
        return carry

    def loss(router, xs):
        return auxiliary_loss(carry_of(router, xs))

    optimiser = optax.adam(3e-2)

    @eqx.filter_jit
    def train(router, key):
        def step(carry, key):
            router, opt_state = carry
            xs = jr.normal(key, (B, T, IN))
            grads = eqx.filter_grad(loss)(router, xs)
            with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it
                updates, opt_state = optimiser.update(grads, opt_state)
            return (eqx.apply_updates(router, updates), opt_state), None

        opt_state = optimiser.init(eqx.filter(router, eqx.is_array))
        (router, _), _ = jax.lax.scan(step, (router, opt_state), jr.split(key, 400))
        return router

    @eqx.filter_jit
    def pooled(router, xs):
        (stats,) = auxiliary_statistics(carry_of(router, xs))
        return stats.pool()

    test_xs = jr.normal(k_test, (4 * B, T, IN))
    trained = train(router, k_train)
    return pooled(router, test_xs), pooled(trained, test_xs)


def test_load_balancing_loss_balances_the_experts(getkey):
    """Optimising the Switch load-balancing loss (z-loss off) takes the max load
    fraction from ~1 to below 0.375 (uniform is 1/E = 0.25; over 46 seeds it ended
    at 0.25-0.31, the sampling noise of 640 tokens being ~0.02) and the loss from
    ~0.035 (0.01 * 4 * P_0, P_0 ~ 0.87) to below 0.35 of that (it ended at 0.29 of
    it: ~0.010, the balanced value `balance_coefficient`)."""
    before, after = _train_router(
        getkey(), balance_coefficient=1e-2, z_loss_coefficient=0.0
    )
    assert float(jnp.max(before.load())) > 0.9
    assert float(jnp.max(after.load())) < 0.375, after.load()
    assert float(after.loss()) < 0.35 * float(before.loss())
    assert float(after.loss()) < 1.1e-2


def test_z_loss_shrinks_the_router_logits(getkey):
    """Optimising the router z-loss alone brings the mean squared logsumexp of
    the logits from ~9.8 (logits ~ (3, 0, 0, 0)) to below 0.1 (its minimum 0 is
    at logsumexp = 0). In this toy problem, where nothing but the auxiliary loss
    shapes the router, the z-loss also flattens the input dependence of the logits
    that balancing needs, which is why the balancing test above switches it off."""
    before, after = _train_router(
        getkey(), balance_coefficient=0.0, z_loss_coefficient=1e-3
    )
    z_before = float(before.z / before.count)
    z_after = float(after.z / after.count)
    assert z_before > 5.0, z_before
    assert z_after < 0.1, z_after
    np.testing.assert_allclose(after.loss(), 1e-3 * z_after, rtol=1e-5)


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="k"):
        TopKRouter(in_features=IN, num_experts=2, k=3, key=getkey())
    with pytest.raises(ValueError, match="num_experts"):
        TopKRouter(in_features=IN, num_experts=0, k=1, key=getkey())
    router = TopKRouter(in_features=IN, num_experts=3, k=1, key=getkey())
    experts = [mnn.MLP(in_features=IN, features=(OUT,), key=getkey())] * 2
    with pytest.raises(ValueError, match="num_experts=3"):
        MoE(experts, router)
    mixed = MoE(
        [
            mnn.MLP(in_features=IN, features=(OUT,), key=getkey()),
            mnn.MLP(in_features=IN, features=(OUT + 1,), key=getkey()),
            mnn.MLP(in_features=IN, features=(OUT,), key=getkey()),
        ],
        router,
    )
    with pytest.raises(ValueError, match="same shape"):
        jax.eval_shape(
            mixed, mixed.init_carry(), jnp.zeros((T, IN)), jnp.zeros(T, bool)
        )
