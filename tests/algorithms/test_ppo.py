import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
import pytest

import memrl_eqx
from memrl_eqx.algorithms import _ppo, PPO, PPOConfig
from memrl_eqx.envs import make

from ..helpers import tree_allclose
from .envs_for_tests import ConstantReward


SMALL = PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2)


def _make_ppo(torso="gru", config=SMALL, env_id="popgym::RepeatPreviousEasy", key=None):
    env, params = make(env_id)
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso=torso, features=16, key=key if key is not None else jr.key(0)
    )
    return PPO(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(3e-4),
    )


@pytest.mark.parametrize("torso", ["gru", "lstm", "lru", "mlp"])
def test_train_and_evaluate_shapes(torso):
    algo = _make_ppo(torso)
    state = algo.init(jr.key(0))
    state, metrics = algo.train(state, 3 * SMALL.batch_size)
    assert int(state.step) == 3 * SMALL.batch_size
    assert metrics["step"].tolist() == [32, 64, 96]
    for name in ("loss/policy", "loss/value", "entropy", "approx_kl"):
        assert metrics[name].shape == (3,) and jnp.all(jnp.isfinite(metrics[name]))
    # Entropy of a 4-action policy lies in [0, log 4].
    assert jnp.all((metrics["entropy"] > 0) & (metrics["entropy"] <= jnp.log(4.0)))
    result = algo.evaluate(state, jr.key(1), 3)
    assert result["return"].shape == (3,)
    # RepeatPrevious returns lie in [-1, 1] and its episodes run to the deck's end.
    assert jnp.all(jnp.abs(result["return"]) <= 1.0 + 1e-5)
    assert jnp.all(result["length"] == result["length"][0])


def test_parameters_change_and_steps_round_up():
    algo = _make_ppo()
    state = algo.init(jr.key(0))
    new, metrics = algo.train(state, 1)  # rounds up to one whole update
    assert metrics["step"].tolist() == [SMALL.batch_size]
    assert not tree_allclose(
        eqx.filter(new.actor, eqx.is_array), eqx.filter(state.actor, eqx.is_array)
    )


def test_update_is_traced_once_per_configuration():
    algo = _make_ppo()
    state = algo.init(jr.key(0))
    before = eqx.debug.get_num_traces(_ppo._train_traced)
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    assert eqx.debug.get_num_traces(_ppo._train_traced) - before == 1


def test_vmap_over_seeds_equals_separate_runs():
    """`eqx.filter_vmap` trains several seeds at once; each equals its own run."""
    keys = jr.split(jr.key(3), 3)

    def run(key):
        algo = _make_ppo(key=key)
        return algo.train(algo.init(key), 2 * SMALL.batch_size)

    states, metrics = eqx.filter_jit(eqx.filter_vmap(run))(keys)
    for i, key in enumerate(keys):
        state_i, metrics_i = eqx.filter_jit(run)(key)
        assert tree_allclose(
            metrics["loss/value"][i], metrics_i["loss/value"], rtol=1e-4, atol=1e-5
        )
        assert tree_allclose(
            eqx.filter(jax.tree.map(lambda x: x[i], states.actor), eqx.is_array),
            eqx.filter(state_i.actor, eqx.is_array),
            rtol=1e-4,
            atol=1e-5,
        )
    # Different seeds give different agents.
    assert not jnp.allclose(metrics["loss/value"][0], metrics["loss/value"][1])


def test_truncation_bootstraps_from_the_final_observation():
    """On a task cut by a time limit with a constant observation and reward 1,
    the value must approach 1 / (1 - gamma) = 10; treating the time limit as a
    termination would pull it to the mean partial return, about 2.6 (gamma 0.9,
    5 steps)."""
    env = ConstantReward()
    params = env.default_params
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="mlp", features=8, key=jr.key(0)
    )
    config = PPOConfig(
        num_envs=8,
        num_steps=10,
        num_minibatches=1,
        update_epochs=4,
        gamma=0.9,
        gae_lambda=0.9,
        clip_value_loss=False,
    )
    algo = PPO(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(3e-3),
    )
    state, _ = algo.train(algo.init(jr.key(1)), 300 * config.batch_size)
    _, values = jax.vmap(state.critic)(
        jax.vmap(lambda _: state.critic.init_carry())(jnp.arange(8)),
        jax.tree.map(lambda x: x[:, None], state.timestep),
    )
    assert jnp.all(jnp.abs(values - 10.0) < 1.0), values


def test_bad_config_and_arguments():
    with pytest.raises(ValueError, match="num_minibatches"):
        PPOConfig(num_envs=6, num_minibatches=4)
    with pytest.raises(ValueError, match="num_envs"):
        PPOConfig(num_envs=0)
    with pytest.raises(ValueError, match="gamma"):
        PPOConfig(gamma=1.5)
    algo = _make_ppo()
    state = algo.init(jr.key(0))
    with pytest.raises(ValueError, match="num_steps"):
        algo.train(state, -5)


def test_auxiliary_losses_reach_the_ppo_loss():
    """An MoE torso's load-balancing loss is part of what PPO minimises (the
    Flax original only logged it); a torso without one adds exactly zero."""
    moe = _make_ppo("moe_gru")
    state, metrics = moe.train(moe.init(jr.key(0)), 2 * SMALL.batch_size)
    auxiliary = metrics["loss/auxiliary"]
    assert auxiliary.shape == (2,) and jnp.all(auxiliary > 0)
    # It is the statistics of one minibatch, not of everything seen so far:
    # with balanced routing it is near its floor, coefficient * (1 + ...).
    assert jnp.all(auxiliary < 0.1)
    # And it is in the total loss that is differentiated.
    cfg = moe.config
    total = (
        metrics["loss/policy"]
        + cfg.value_coefficient * metrics["loss/value"]
        - cfg.entropy_coefficient * metrics["entropy"]
        + auxiliary
    )
    assert tree_allclose(metrics["loss"], total, rtol=1e-5, atol=1e-6)
    _, metrics = _make_ppo("gru").train(_make_ppo("gru").init(jr.key(0)), 32)
    assert jnp.all(metrics["loss/auxiliary"] == 0)
