import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import optax
import pytest

import memrl_eqx
from memrl_eqx.algorithms import DQN, DQNConfig
from memrl_eqx.algorithms._offpolicy import episode_starts

from ..helpers import tree_allclose
from .envs_for_tests import ConstantReward


SMALL = DQNConfig(
    num_envs=4,
    rollout_length=2,
    buffer_capacity=64,
    batch_size=8,
    sequence_length=4,
    burn_in_length=2,
    n_step=2,
    target_update_period=2,
)


def _make_dqn(torso="gru", config=SMALL, env_id="popgym::RepeatPreviousEasy", key=None):
    env, params = memrl_eqx.envs.make(env_id)
    q = memrl_eqx.q_network(
        env, params, torso=torso, features=16, key=key if key is not None else jr.key(0)
    )
    return DQN(
        config=config,
        env=env,
        env_params=params,
        q_network=q,
        optimizer=optax.adam(1e-3),
    )


def test_warmup_train_and_evaluate():
    algo = _make_dqn("lru")  # the other tests use a GRU
    state = algo.init(jr.key(0))
    state = algo.warmup(state, 32)
    assert int(state.step) == 32
    assert bool(algo.replay.can_sample(state.replay))
    state, metrics = algo.train(state, 3 * SMALL.steps_per_update)
    assert metrics["step"].tolist() == [40, 48, 56]
    assert jnp.all(jnp.isfinite(metrics["loss"])) and jnp.all(metrics["epsilon"] <= 1)
    result = algo.evaluate(state, jr.key(1), 3)
    assert result["return"].shape == (3,)
    assert jnp.all(jnp.abs(result["return"]) <= 1.0 + 1e-5)


def test_train_waits_for_the_replay_and_updates_the_target_periodically():
    algo = _make_dqn()
    state = algo.init(jr.key(0))
    # A window holds 2 + 4 + 2 = 8 steps; 2 steps per update per env, so the
    # replay can first sample at the 4th update.
    three = 3 * SMALL.steps_per_update
    state, first = algo.train(state, three)
    state, second = algo.train(state, three)
    learned = np.isfinite(np.concatenate([first["loss"], second["loss"]]))
    assert learned.tolist() == [False, False, False, True, True, True]
    # The target network is a copy of the online one after every 2nd update
    # (tau = 1): it is, after the 6th.
    assert tree_allclose(
        eqx.filter(state.target_network, eqx.is_array),
        eqx.filter(state.q_network, eqx.is_array),
    )
    # After the 9th (the last copy was at the 8th), it lags one update behind.
    state, _ = algo.train(state, three)
    assert not tree_allclose(
        eqx.filter(state.target_network, eqx.is_array),
        eqx.filter(state.q_network, eqx.is_array),
    )


def test_stored_carries_are_the_acting_carries():
    """Each stored step keeps the carry before it: running the network over an
    environment's stored steps from its first stored carry reproduces them."""
    algo = _make_dqn()
    state = algo.warmup(algo.init(jr.key(0)), 48)
    stored = jtu.tree_map(lambda x: x[0, :12], state.replay.buffer.experience)
    network = state.q_network
    carry = jtu.tree_map(lambda c: c[0], stored.carry)
    for t in range(12):
        assert tree_allclose(carry, jtu.tree_map(lambda c: c[t], stored.carry))
        step = jtu.tree_map(lambda x: x[t : t + 1], stored.timestep)
        carry, _ = network(carry, step)


def test_tape_and_segments_give_the_same_loss_on_a_window_at_an_episode_start():
    """A window that starts at an episode start needs no stored state: from the
    stored carry (segments) or from the initial carry (tape), the reset flag of
    its first step makes the loss the same."""
    segments = dataclasses.replace(SMALL, burn_in_length=0)
    tape = dataclasses.replace(SMALL, burn_in_length=0, sampling="tape")
    algo = _make_dqn(config=segments)
    state = algo.warmup(algo.init(jr.key(0)), 4 * 60)  # past one 52-step episode
    starts = episode_starts(state.replay.buffer.experience)
    assert bool(algo.replay.can_sample(state.replay, starts))
    sample = algo.replay.sample(state.replay, jr.key(1), starts)
    assert bool(jnp.all(sample.data.timestep.reset[:, 0]))
    # The stored carries at those starts are not initial (the episode before ran).
    init = state.q_network.init_carry()
    first = jtu.tree_map(lambda c: c[:, 0], sample.data.carry)
    assert not tree_allclose(first, jtu.tree_map(lambda c: c[None] + 0 * first, init))
    tape_algo = eqx.tree_at(lambda a: a.config, algo, tape)
    loss = lambda a: a._loss(state.q_network, state.target_network, sample)
    seg_loss, (seg_td, seg_mask, _) = loss(algo)
    tape_loss, (tape_td, tape_mask, _) = loss(tape_algo)
    assert float(seg_loss) > 0
    np.testing.assert_allclose(seg_loss, tape_loss, rtol=1e-6)
    np.testing.assert_allclose(seg_td, tape_td, rtol=1e-6, atol=1e-7)
    # Away from an episode start, the stored carry matters: a window from any
    # start loses its history when run from the initial carry.
    mid = algo.replay.sample(state.replay, jr.key(2), ~starts)
    seg_mid, _ = algo._loss(state.q_network, state.target_network, mid)
    tape_mid, _ = tape_algo._loss(state.q_network, state.target_network, mid)
    assert not np.isclose(seg_mid, tape_mid)


def test_tape_sampling_trains():
    config = dataclasses.replace(SMALL, burn_in_length=0, sampling="tape")
    algo = _make_dqn(config=config)
    state = algo.warmup(algo.init(jr.key(0)), 4 * 60)
    state, metrics = algo.train(state, 3 * SMALL.steps_per_update)
    assert jnp.all(jnp.isfinite(metrics["loss"]))


def test_prioritised_replay_sets_priorities_from_td_errors():
    config = dataclasses.replace(SMALL, prioritised=True)
    algo = _make_dqn(config=config)
    state = algo.warmup(algo.init(jr.key(0)), 64)
    before = state.replay.priorities
    assert bool(jnp.all(before[algo.replay.valid_starts(state.replay)] == 1.0))
    state, _ = algo._gradient_step(state, jr.key(3), algo._start_mask(state))
    changed = state.replay.priorities != before
    # Up to batch_size windows got new priorities, all positive and not 1.
    assert 1 <= int(jnp.sum(changed)) <= SMALL.batch_size
    assert bool(jnp.all(state.replay.priorities[changed] > 0))


def test_double_q_uses_the_online_argmax():
    """With one step, reward 0 and discount 0.5, the double target values the
    online network's greedy action with the target network."""
    algo = _make_dqn(torso="mlp", env_id="gymnax::CartPole-v1")
    state = algo.warmup(algo.init(jr.key(0)), 64)
    sample = algo.replay.sample(state.replay, jr.key(1))
    perturbed = jtu.tree_map(
        lambda x: x + 0.3 * jr.normal(jr.key(5), x.shape),
        eqx.filter(state.q_network, eqx.is_inexact_array),
    )
    target = eqx.combine(perturbed, state.q_network)
    window = jtu.tree_map(lambda x: x[0], sample.data)
    run = lambda net: net(net.init_carry(), window.timestep)[1]
    q_online, q_target = run(state.q_network), run(target)
    for double in (True, False):
        config = dataclasses.replace(SMALL, double=double, burn_in_length=0, n_step=1)
        a = eqx.tree_at(lambda a: a.config, algo, config)
        _, (td, mask, _) = a._sequence_loss(state.q_network, target, window, 1.0)
        picked = jnp.argmax(q_online if double else q_target, -1)
        boot = jnp.take_along_axis(q_target, picked[:, None], -1)[:, 0]
        bootstrap = jnp.where(window.terminated[0], 0.0, boot[1])
        expected = window.reward[0] + 0.99 * bootstrap
        assert bool(mask[0])
        q0 = q_online[0, window.action[0]]
        np.testing.assert_allclose(td[0], jnp.abs(q0 - expected), rtol=1e-5)
    # The two targets differ here (the networks disagree on the greedy action).
    assert not jnp.all(jnp.argmax(q_online, -1) == jnp.argmax(q_target, -1))


def test_truncation_bootstraps_and_q_approaches_the_discounted_sum():
    """On a task cut by a time limit (constant observation, reward 1), Q must
    approach 1 / (1 - gamma) = 10, not the mean partial return."""
    env = ConstantReward()
    params = env.default_params
    config = DQNConfig(
        num_envs=4,
        rollout_length=4,
        buffer_capacity=200,
        batch_size=32,
        gamma=0.9,
        target_update_period=10,
        epsilon_decay_steps=1.0,
    )
    q = memrl_eqx.q_network(env, params, torso="mlp", features=8, key=jr.key(0))
    algo = DQN(
        config=config,
        env=env,
        env_params=params,
        q_network=q,
        optimizer=optax.adam(1e-2),
    )
    state = algo.warmup(algo.init(jr.key(0)), 64)
    state, metrics = algo.train(state, 3000 * config.steps_per_update // 10)
    np.testing.assert_allclose(metrics["q_value"][-20:].mean(), 10.0, rtol=0.1)


def test_vmap_over_seeds_equals_separate_runs():
    keys = jr.split(jr.key(3), 4)

    def run(key):
        algo = _make_dqn(key=key)
        state = algo.warmup(algo.init(key), 40)
        return algo.train(state, 3 * SMALL.steps_per_update)

    states, metrics = eqx.filter_jit(eqx.filter_vmap(run))(keys)
    for i, key in enumerate(keys):
        state_i, metrics_i = eqx.filter_jit(run)(key)
        assert tree_allclose(
            metrics["loss"][i], metrics_i["loss"], rtol=1e-4, atol=1e-6
        )
        assert tree_allclose(
            eqx.filter(jtu.tree_map(lambda x: x[i], states.q_network), eqx.is_array),
            eqx.filter(state_i.q_network, eqx.is_array),
            rtol=1e-4,
            atol=1e-5,
        )
    assert not jnp.allclose(metrics["loss"][0], metrics["loss"][1])


def test_hyperparameters_as_array_leaves_sweep_in_one_vmap():
    """Float hyperparameters can be arrays: one vmap trains a learning-rate-free
    sweep over gamma (the config is vmapped like any PyTree)."""
    gammas = jnp.array([0.5, 0.9, 0.99])

    def run(gamma):
        algo = _make_dqn(config=dataclasses.replace(SMALL, gamma=gamma))
        state = algo.warmup(algo.init(jr.key(0)), 40)
        return algo.train(state, 2 * SMALL.steps_per_update)[1]["loss"]

    losses = eqx.filter_jit(jax.vmap(run))(gammas)
    assert losses.shape == (3, 2)
    np.testing.assert_allclose(
        losses[1], eqx.filter_jit(run)(jnp.float32(0.9)), rtol=1e-5
    )
    assert not jnp.allclose(losses[0], losses[2])


def test_presets_and_bad_config():
    r2d2 = DQNConfig.r2d2(num_envs=8)
    assert r2d2.burn_in_length > 0 and r2d2.prioritised and r2d2.value_rescaling
    assert r2d2.num_envs == 8
    assert DQNConfig.drqn().sequence_length > 1
    with pytest.raises(ValueError, match="`n_step` must be a positive integer"):
        DQNConfig(n_step=0)
    with pytest.raises(ValueError, match="`burn_in_length` must be 0 with"):
        DQNConfig(sampling="tape", burn_in_length=4)
    with pytest.raises(ValueError, match="must be 'segments' or 'tape'"):
        DQNConfig(sampling="episodes")
    with pytest.raises(
        ValueError, match="`buffer_capacity` .* must hold a window of 11 steps"
    ):
        DQNConfig(buffer_capacity=10, sequence_length=10)
    with pytest.raises(ValueError, match="`gamma` must lie in"):
        DQNConfig(gamma=1.5)
    algo = _make_dqn()
    with pytest.raises(ValueError, match="`num_steps` must be a positive integer"):
        algo.train(algo.init(jr.key(0)), 0)
    env, params = memrl_eqx.envs.make("gymnax::Pendulum-v1")
    with pytest.raises(ValueError, match="action space must be discrete"):
        DQN(
            env=env, env_params=params, q_network=algo.q_network, optimizer=optax.sgd(1)
        )
