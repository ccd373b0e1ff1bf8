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


@pytest.mark.parametrize("torso", ["gru", "lru", "mlp"])
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
    """`eqx.filter_vmap` trains four seeds at once; each equals its own run (with
    burn-in, so the stored tails and carries are batched too)."""
    keys = jr.split(jr.key(3), 4)

    def run(key):
        algo = _make_ppo(config=BURN_IN, key=key)
        return algo.train(algo.init(key), 2 * BURN_IN.batch_size)

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
        assert tree_allclose(
            jax.tree.map(lambda x: x[i], states.burn_in_actor_carry),
            state_i.burn_in_actor_carry,
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


# ---------------------------------------------------------------- burn-in

BURN_IN = PPOConfig(
    num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2, burn_in_length=3
)


def _params(state):
    return eqx.filter((state.actor, state.critic), eqx.is_array)


def test_burn_in_first_update_equals_no_burn_in():
    """Every environment's first rollout starts with a reset, so the carry the
    burn-in produces before it is discarded: the first update is the same with
    and without burn-in (the second is not, see the next test)."""
    plain = _make_ppo(config=SMALL)
    burned = _make_ppo(config=BURN_IN)
    s_plain, m_plain = plain.train(plain.init(jr.key(0)), SMALL.batch_size)
    s_burned, m_burned = burned.train(burned.init(jr.key(0)), BURN_IN.batch_size)
    # Bitwise equal on the machines tried; the tolerance only allows for the
    # compiler fusing the two programs differently.
    assert tree_allclose(_params(s_plain), _params(s_burned), rtol=1e-6, atol=1e-7)
    for name in m_plain:  # ("return" is NaN: no episode ended yet)
        assert jnp.allclose(
            m_plain[name], m_burned[name], rtol=1e-6, atol=1e-7, equal_nan=True
        ), name
    # The state keeps the last 3 inputs of the rollout (leading into `timestep`)
    # and the carries from before them.
    assert s_burned.burn_in_timestep.reset.shape == (4, 3)
    assert s_plain.burn_in_timestep is None
    # The second update differs: its loss starts from refreshed carries.
    s_plain, m_plain = plain.train(s_plain, SMALL.batch_size)
    s_burned, m_burned = burned.train(s_burned, BURN_IN.batch_size)
    assert not tree_allclose(m_plain["loss"], m_burned["loss"])


def test_burn_in_refreshes_the_carry_with_the_current_parameters():
    algo = _make_ppo(config=BURN_IN)
    state0 = algo.init(jr.key(0))
    state1, _ = algo.train(state0, BURN_IN.batch_size)

    def replay(network, carry, timesteps):
        # Step by step over the stored steps, for every environment.
        def one_env(carry, timesteps):
            for t in range(BURN_IN.burn_in_length):
                step = jax.tree.map(lambda x: x[t], timesteps)
                carry, _ = network(carry, jax.tree.map(lambda x: x[None], step))
            return carry

        return eqx.filter_jit(jax.vmap(one_env))(carry, timesteps)

    tail = state1.burn_in_timestep
    # Bookkeeping: the parameters that collected the rollout (state0's) take the
    # stored carry over the stored steps to the carry the rollout ended with.
    for network, stored, rollout_carry in (
        (state0.actor, state1.burn_in_actor_carry, state1.actor_carry),
        (state0.critic, state1.burn_in_critic_carry, state1.critic_carry),
    ):
        assert tree_allclose(replay(network, stored, tail), rollout_carry, atol=1e-5)
    # The carries the next loss starts from are the *current* networks' over the
    # same steps, which differ from the stale carries of the rollout.
    refreshed = algo._refresh_carries(
        state1.actor,
        state1.critic,
        state1.burn_in_actor_carry,
        state1.burn_in_critic_carry,
        tail,
    )
    expected = (
        replay(state1.actor, state1.burn_in_actor_carry, tail),
        replay(state1.critic, state1.burn_in_critic_carry, tail),
    )
    assert tree_allclose(refreshed, expected, atol=1e-5)
    stale = (state1.actor_carry, state1.critic_carry)
    assert not tree_allclose(refreshed, stale, atol=1e-5)

    # And the loss is computed from them: PPO with burn-in, given the stored
    # carries and steps, has the loss of PPO without burn-in given the refreshed
    # carries.
    _, rollout, _, _ = eqx.filter_jit(algo._rollout)(state1)
    data = jax.tree.map(
        lambda x: jnp.swapaxes(x, 0, 1), eqx.filter(rollout, eqx.is_array)
    )
    advantages = returns = data.reward
    params = (state1.actor, state1.critic)
    key = jr.key(5)
    carries = (state1.burn_in_actor_carry, state1.burn_in_critic_carry)
    loss, aux = algo._loss(params, carries + (tail, data, advantages, returns), key)
    plain = _make_ppo(config=SMALL)
    loss_refreshed, aux_refreshed = plain._loss(
        params, refreshed + (None, data, advantages, returns), key
    )
    loss_stale, _ = plain._loss(params, stale + (None, data, advantages, returns), key)
    assert tree_allclose(aux, aux_refreshed, atol=1e-5)
    assert not jnp.allclose(loss, loss_stale)


def test_burn_in_over_a_whole_rollout_and_bad_lengths():
    # burn_in_length = num_steps: the stored carries are the rollout's start ones.
    config = PPOConfig(num_envs=4, num_steps=4, num_minibatches=2, burn_in_length=4)
    algo = _make_ppo(config=config)
    state = algo.init(jr.key(0))
    start = state.actor_carry
    state, metrics = algo.train(state, config.batch_size)
    assert jnp.all(jnp.isfinite(metrics["loss"]))
    assert tree_allclose(state.burn_in_actor_carry, start, rtol=0, atol=0)
    for bad in (5, -1):
        with pytest.raises(ValueError, match="burn_in_length"):
            PPOConfig(num_envs=4, num_steps=4, num_minibatches=2, burn_in_length=bad)
