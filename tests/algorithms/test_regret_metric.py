"""The `regret` training metric: where the environment is wrapped in
`BSuiteRegret`, every algorithm's metrics carry the mean regret of the episodes
that ended in an update, and only there."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import memrl_eqx
from memrl_eqx.algorithms import DQN, DQNConfig, PPO, PPOConfig
from memrl_eqx.envs import BSuiteRegret, make


def _ppo(env, params):
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="gru", features=8, key=jr.key(0)
    )
    config = PPOConfig(num_envs=4, num_steps=12, num_minibatches=2, update_epochs=1)
    return PPO(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )


def _dqn(env, params):
    q = memrl_eqx.q_network(env, params, torso="gru", features=8, key=jr.key(0))
    config = DQNConfig(num_envs=4, rollout_length=6, buffer_capacity=64, batch_size=4)
    return DQN(
        config=config,
        env=env,
        env_params=params,
        q_network=q,
        optimizer=optax.adam(1e-3),
    )


@pytest.mark.parametrize("build", [_ppo, _dqn], ids=["ppo", "dqn"])
def test_regret_is_reported_beside_the_return(build):
    # MemoryChain's episodes are 6 steps; their regret is 1 - return.
    env, params = make("gymnax::MemoryChain-bsuite")
    algo = build(BSuiteRegret(env), params)
    state = algo.init(jr.key(1))
    if hasattr(algo, "warmup"):
        state = algo.warmup(state, 4 * 12)
    _, metrics = algo.train(state, 4 * 12 * 3)
    regret, ret = np.asarray(metrics["regret"]), np.asarray(metrics["return"])
    assert regret.shape == ret.shape and np.isfinite(regret).all()
    np.testing.assert_allclose(regret, 1.0 - ret, atol=1e-6)
    assert ((regret >= 0) & (regret <= 2)).all()

    # Unwrapped, there is no regret to report.
    plain = build(env, params)
    state = plain.init(jr.key(1))
    if hasattr(plain, "warmup"):
        state = plain.warmup(state, 4 * 12)
    _, metrics = plain.train(state, 4 * 12)
    assert "regret" not in metrics and jnp.isfinite(metrics["return"]).all()
