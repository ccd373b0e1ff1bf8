import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn import heads

from ..helpers import tree_allclose


T, OBS, A = 9, 3, 4


def _timestep(key):
    k1, k2, k3, k4 = jr.split(key, 4)
    return mnn.Timestep(
        obs=jr.normal(k1, (T, OBS)),
        prev_action=jr.randint(k2, (T,), 0, A),
        prev_reward=jr.normal(k3, (T,)),
        reset=jnp.zeros(T, bool).at[jnp.array([0, 5])].set(True),
    )


def test_feature_extractor_concatenates_the_parts(getkey):
    extractor = mnn.FeatureExtractor(
        observation_extractor=mnn.Identity(),
        action_extractor=mnn.OneHot(A),
        reward_extractor=mnn.Identity(),
        done_extractor=mnn.Identity(),
    )
    step = jax.tree.map(lambda x: x[5], _timestep(getkey()))
    features = extractor(step)
    expected = jnp.concatenate(
        [
            step.obs,
            jax.nn.one_hot(step.prev_action, A),
            step.prev_reward[None],
            jnp.ones(1),
        ]
    )
    assert tree_allclose(features, expected)
    only_obs = mnn.FeatureExtractor(mnn.Identity())
    assert only_obs(step).shape == (OBS,)


def _network(key, torso="gru"):
    k1, k2, k3 = jr.split(key, 3)
    extractor = mnn.FeatureExtractor(
        observation_extractor=mnn.MLP(in_features=OBS, features=(8,), key=k1),
        action_extractor=mnn.OneHot(A),
        reward_extractor=mnn.Identity(),
    )
    width = 8 + A + 1
    body = mnn.RNN(mnn.GRUCell(in_features=width, features=6, key=k2))
    return mnn.Network(
        extractor, body, heads.Categorical(in_features=6, action_dim=A, key=k3)
    )


def test_network_step_by_step_equals_sequence(getkey):
    """Acting (T = 1 per call) equals training on the sequence, resets included."""
    network = _network(getkey())
    timestep = _timestep(getkey())

    @eqx.filter_jit
    def step(carry, timestep):
        carry, dist = network(carry, timestep)
        return carry, dist.logits

    _, full = step(network.init_carry(), timestep)
    carry, logits = network.init_carry(), []
    for t in range(T):
        carry, one = step(carry, jax.tree.map(lambda x: x[t : t + 1], timestep))
        logits.append(one)
    assert tree_allclose(jnp.concatenate(logits), full, rtol=1e-5, atol=1e-6)


def test_categorical_head_matches_closed_forms(getkey):
    head = heads.Categorical(in_features=5, action_dim=A, scale=1.0, key=getkey())
    x = jr.normal(getkey(), (T, 5))
    dist = head(x)
    w, b = np.asarray(head.linear.weight), np.asarray(head.linear.bias)
    logits = np.asarray(x, np.float64) @ w.T + b
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    actions = np.arange(T) % A
    np.testing.assert_allclose(
        dist.log_prob(jnp.asarray(actions)), np.log(p[np.arange(T), actions]), rtol=1e-5
    )
    np.testing.assert_allclose(dist.entropy(), -(p * np.log(p)).sum(-1), rtol=1e-5)
    # A small output scale starts the policy near uniform.
    near_uniform = heads.Categorical(in_features=5, action_dim=A, key=getkey())(x)
    assert jnp.all(jnp.abs(near_uniform.entropy() - jnp.log(A)) < 1e-2)


def test_value_and_q_heads_are_affine(getkey):
    x = jr.normal(getkey(), (T, 5))
    v = heads.VNetwork(in_features=5, key=getkey())
    q = heads.DiscreteQNetwork(in_features=5, action_dim=A, key=getkey())
    xn = np.asarray(x)
    v_expected = xn @ np.asarray(v.linear.weight[0]) + np.asarray(v.linear.bias[0])
    q_expected = xn @ np.asarray(q.linear.weight).T + np.asarray(q.linear.bias)
    np.testing.assert_allclose(v(x), v_expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(q(x), q_expected, rtol=1e-5, atol=1e-5)
    assert v(x).shape == (T,) and q(x).shape == (T, A)


def test_mlp_rejects_empty_features(getkey):
    with pytest.raises(ValueError, match="features"):
        mnn.MLP(in_features=3, features=(), key=getkey())
