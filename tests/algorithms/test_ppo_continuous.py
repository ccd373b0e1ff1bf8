"""PPO with continuous actions: Gaussian and tanh-squashed Gaussian policies on a
1-d box (gymnax Pendulum-v1), action clipping, the entropy of a squashed policy,
and a learning test."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
from gymnax.environments import spaces

import memrl_eqx
from memrl_eqx.algorithms import _ppo
from memrl_eqx.algorithms._ppo import PPO, PPOConfig
from memrl_eqx.algorithms._rollout import add_time_axis
from memrl_eqx.envs import make
from memrl_eqx.nn import heads

from .envs_for_tests import ConstantReward


SMALL = PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2)
MAX_TORQUE = 2.0  # Pendulum-v1's action box is [-2, 2].
# Pendulum's reward per step lies in [-(pi^2 + 0.1 * 8^2 + 0.001 * 2^2), 0].
MIN_RETURN = -200 * (math.pi**2 + 6.4 + 0.004)


def _make(config=SMALL, torso="mlp", squashed=False, log_std=None, key=None):
    env, params = make("gymnax::Pendulum-v1")
    key = jr.key(0) if key is None else key
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso=torso, features=16, key=key
    )
    if squashed:
        head = heads.SquashedGaussian(
            in_features=16,
            action_dim=1,
            low=-MAX_TORQUE,
            high=MAX_TORQUE,
            key=jr.fold_in(key, 1),
        )
        actor = eqx.tree_at(lambda a: a.head, actor, head)
    if log_std is not None:
        actor = eqx.tree_at(lambda a: a.head.log_std, actor, jnp.full((1,), log_std))
    return PPO(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(3e-4),
    )


def _stored_log_probs(actor, rollout):
    """The actor's log-probabilities of the stored actions, recomputed step by step
    (a feed-forward actor: every step from the initial carry)."""

    def one(timestep, action):
        _, dist = actor(actor.init_carry(), add_time_axis(timestep))
        return dist.log_prob(action[None])[0]

    return jax.vmap(jax.vmap(one))(rollout.timestep, rollout.action)


def test_gaussian_actions_are_stored_as_sampled_and_clipped_for_the_env():
    # A wide policy (std 5) so that many samples fall outside the box [-2, 2].
    algo = _make(log_std=math.log(5.0))
    state = algo.init(jr.key(0))
    # The previous action of a continuous environment is a float vector.
    assert state.timestep.prev_action.shape == (4, 1)
    assert state.timestep.prev_action.dtype == jnp.float32
    _, rollout, _, _ = algo._rollout(state)
    action = rollout.action
    assert action.shape == (8, 4, 1) and action.dtype == jnp.float32
    assert jnp.mean(jnp.abs(action) > MAX_TORQUE) > 0.3
    # Pendulum's episodes last 200 steps, so no reset here: the next input's
    # previous action is what the environment received, the clipped sample.
    assert not jnp.any(rollout.timestep.reset[1:])
    received = rollout.timestep.prev_action[1:]
    # (To a float32 ulp: compiled without optimisations, as the tests are, XLA
    # may evaluate the sample's expression twice with a different rounding.)
    clipped = jnp.clip(action[:-1], -MAX_TORQUE, MAX_TORQUE)
    assert jnp.allclose(received, clipped, rtol=1e-6, atol=1e-6)
    # The log-probability is that of the unclipped sample.
    expected = _stored_log_probs(state.actor, rollout)
    assert jnp.allclose(rollout.log_prob, expected, atol=1e-5)

    # Without clipping the environment receives the sample itself.
    unclipped = _make(
        PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, clip_actions=False),
        log_std=math.log(5.0),
    )
    _, rollout, _, _ = unclipped._rollout(unclipped.init(jr.key(0)))
    assert jnp.array_equal(rollout.timestep.prev_action[1:], rollout.action[:-1])


def test_gaussian_trains_and_evaluates():
    algo = _make()
    state = algo.init(jr.key(0))
    before = eqx.debug.get_num_traces(_ppo._train_traced)
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    state, metrics = algo.train(state, 2 * SMALL.batch_size)
    # One compilation: Pendulum's weakly typed reset state does not retrace.
    assert eqx.debug.get_num_traces(_ppo._train_traced) - before == 1
    for name in ("loss", "loss/policy", "loss/value", "approx_kl"):
        assert jnp.all(jnp.isfinite(metrics[name])), name
    # The exact entropy of N(mean, 1) in one dimension, 0.5 log(2 pi e) = 1.419,
    # barely moved by four small updates.
    assert jnp.allclose(
        metrics["entropy"], 0.5 * math.log(2 * math.pi * math.e), atol=0.01
    )
    result = algo.evaluate(state, jr.key(1), 3)
    assert result["length"].tolist() == [200.0] * 3
    assert jnp.all((result["return"] <= 0) & (result["return"] >= MIN_RETURN))


def test_squashed_gaussian_with_a_gru_and_burn_in():
    config = PPOConfig(
        num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2, burn_in_length=4
    )
    algo = _make(config, torso="gru", squashed=True)
    state = algo.init(jr.key(0))
    _, rollout, _, _ = algo._rollout(state)
    # Bounded by construction: strictly inside the box, so clipping is a no-op.
    assert jnp.all(jnp.abs(rollout.action) < MAX_TORQUE)
    assert jnp.array_equal(rollout.timestep.prev_action[1:], rollout.action[:-1])
    state, metrics = algo.train(state, 2 * config.batch_size)
    for name in ("loss", "loss/policy", "loss/value", "entropy", "approx_kl"):
        assert jnp.all(jnp.isfinite(metrics[name])), name
    # The deterministic policy (tanh of the mean, rescaled) and a sampled one.
    for deterministic in (True, False):
        result = algo.evaluate(state, jr.key(1), 2, deterministic=deterministic)
        assert jnp.all((result["return"] <= 0) & (result["return"] >= MIN_RETURN))


@pytest.mark.parametrize("squashed", [False, True])
def test_ratio_is_one_at_the_rollout_parameters(squashed):
    """The loss scores the stored action with the same log-probability as the
    rollout did (for a squashed Gaussian: `log_prob` of the action, not the one
    of the pre-squash sample), so before any update every ratio is 1."""
    algo = _make(squashed=squashed, log_std=None if squashed else math.log(5.0))
    state = algo.init(jr.key(0))
    _, rollout, _, _ = algo._rollout(state)
    data = jax.tree.map(
        lambda x: jnp.swapaxes(x, 0, 1), eqx.filter(rollout, eqx.is_array)
    )
    batch = (
        state.actor_carry,
        state.critic_carry,
        None,
        data,
        data.reward,
        data.reward,
    )
    _, aux = algo._loss((state.actor, state.critic), batch, jr.key(1))
    assert float(aux["approx_kl"]) < 1e-7
    assert float(aux["clip_fraction"]) == 0.0


def test_squashed_entropy_estimate_is_unbiased():
    """For `y = shift + scale tanh(u)`, `u ~ N(m, s)`: `H(y) = H(u) + E[log|dy/du|]`.
    The estimate (one sample of the expectation) averages to the expectation
    computed by quadrature."""
    head = heads.SquashedGaussian(
        in_features=3, action_dim=1, low=-2.0, high=2.0, scale=1.0, key=jr.key(0)
    )
    x = jr.normal(jr.key(1), (1, 3))
    dist = head(x)
    mean = float(dist.distribution.loc[0, 0])
    std = float(dist.distribution.scale_diag[0, 0])
    keys = jr.split(jr.key(2), 20_000)
    estimates = jax.vmap(lambda k: _ppo._entropy(dist, k))(keys)
    assert estimates.shape == (20_000, 1)

    u = np.linspace(mean - 12 * std, mean + 12 * std, 200_001)
    density = np.exp(-0.5 * ((u - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    log_det = np.log(2.0) + np.log1p(-(np.tanh(u) ** 2))
    exact = 0.5 * np.log(2 * np.pi * np.e * std**2) + np.trapezoid(density * log_det, u)
    standard_error = float(jnp.std(estimates)) / np.sqrt(20_000)
    assert abs(float(jnp.mean(estimates)) - exact) < 4 * standard_error + 1e-4
    # It depends on the policy's parameters (a pathwise gradient).
    grad = jax.grad(lambda h: jnp.mean(_ppo._entropy(h(x), jr.key(3))))(head)
    assert float(jnp.abs(grad.log_std.bias[0])) > 0
    # And the mode is tanh of the mean, rescaled to the bounds.
    assert jnp.allclose(_ppo._mode(dist)[0, 0], 2.0 * math.tanh(mean))


def test_gaussian_entropy_is_exact():
    head = heads.Gaussian(in_features=3, action_dim=2, key=jr.key(0))
    dist = head(jnp.ones((4, 3)))
    assert jnp.array_equal(_ppo._entropy(dist, jr.key(0)), dist.entropy())


class _MatrixActions(ConstantReward):
    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (2, 2), jnp.float32)


def test_action_spaces():
    # A discrete environment keeps integer previous actions.
    env, params = make("gymnax::CartPole-v1")
    actor, critic = memrl_eqx.actor_critic(env, params, features=8, key=jr.key(0))
    algo = PPO(
        config=SMALL,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )
    timestep = algo.init(jr.key(0)).timestep
    assert timestep.prev_action.shape == (4,)
    assert timestep.prev_action.dtype == jnp.int32
    # A box that is not 1-d is refused.
    env = _MatrixActions()
    with pytest.raises(ValueError, match="PPO: the environment's action space"):
        PPO(
            env=env,
            env_params=env.default_params,
            actor=actor,
            critic=critic,
            optimizer=optax.adam(1e-3),
        )


# ----------------------------------------------------------------- learning

# Pendulum-v1: swing a pendulum up and keep it upright with a torque in [-2, 2],
# 200 steps. A random policy returns about -1200 to -1400; a good one > -250
# (the best about -150, by the random start).
PENDULUM = PPOConfig(
    num_envs=64,
    num_steps=64,
    num_minibatches=8,
    update_epochs=10,
    gamma=0.95,
    gae_lambda=0.95,
    entropy_coefficient=0.0,
    reward_scale=0.1,
)


@pytest.mark.learning
def test_gaussian_mlp_learns_pendulum():
    # Reached (64 updates, 262k steps): evaluation return -226 with seed 0 (-170
    # and -226 with seeds 1 and 2); the training curve passes -300 near 130k
    # steps. Threshold: -600, about halfway between random (~-1250) and what it
    # reaches, and above any policy that does not swing the pendulum up and
    # hold it. (A tanh-squashed Gaussian head reaches -171/-370/-152 likewise.)
    env, params = make("gymnax::Pendulum-v1")
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="mlp", features=64, key=jr.key(0)
    )
    algo = PPO(
        config=PENDULUM,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.chain(
            optax.clip_by_global_norm(0.5), optax.adam(1e-3, eps=1e-5)
        ),
    )
    state, metrics = algo.train(algo.init(jr.key(0)), 64 * PENDULUM.batch_size)
    evaluation = float(jnp.mean(algo.evaluate(state, jr.key(1), 64)["return"]))
    assert evaluation > -600.0, evaluation
    # The training curve started at random (over its first two episodes: 8
    # updates of 64 steps, episodes of 200).
    assert float(jnp.nanmean(metrics["return"][:8])) < -1000.0
