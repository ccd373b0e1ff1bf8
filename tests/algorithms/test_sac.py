"""SAC and SACD: configuration, replay warm-up, stored carries, targets by hand,
gradients that stay with their own network, tape sampling, vmap over seeds."""

import dataclasses
import functools as ft

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import optax
import pytest
from jaxtyping import TypeCheckError

import memrl_eqx
from memrl_eqx import sac_networks
from memrl_eqx.algorithms import _sac, SAC, SACConfig, SACD, SACDConfig
from memrl_eqx.algorithms._offpolicy import episode_starts, Transition
from memrl_eqx.nn import Timestep
from memrl_eqx.nn.heads import (
    Categorical,
    SquashedGaussian,
    TwinContinuousQNetwork,
    TwinDiscreteQNetwork,
)

from ..helpers import tree_allclose
from .envs_for_tests import ConstantReward


SMALL = dict(
    num_envs=4,
    rollout_length=2,
    buffer_capacity=64,
    batch_size=8,
    sequence_length=3,
    burn_in_length=2,
)
PENDULUM, CARTPOLE = "gymnax::Pendulum-v1", "gymnax::CartPole-v1"


@ft.cache
def _cached(kind="sac", torso="gru", **overrides):
    """`_make`, built once per argument list, so that tests sharing a
    configuration share its compiled programs (an algorithm is a static part of
    the jitted functions, and a new environment or optimiser object is a new
    one)."""
    return _make(kind, torso, **overrides)


def _make(
    kind="sac",
    torso="gru",
    optimizer=None,
    key=None,
    env=None,
    features=16,
    **overrides,
):
    """A small `SAC` on Pendulum or `SACD` on CartPole (or on `env`)."""
    if env is None:
        env, params = memrl_eqx.envs.make(PENDULUM if kind == "sac" else CARTPOLE)
    else:
        params = env.default_params
    key = jr.key(0) if key is None else key
    actor, critic = sac_networks(env, params, torso=torso, features=features, key=key)
    algorithm, config = (SAC, SACConfig) if kind == "sac" else (SACD, SACDConfig)
    return algorithm(
        config=config(**{**SMALL, **overrides}),
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3) if optimizer is None else optimizer,
    )


def _params(state):
    return eqx.filter((state.actor, state.critic, state.log_alpha), eqx.is_array)


# ---------------------------------------------------------------- config, API
def test_bad_config_and_arguments():
    for config in (SACConfig, SACDConfig):
        name = config.__name__
        with pytest.raises(ValueError, match=f"{name}: `num_envs` must be a posit"):
            config(num_envs=0)
        with pytest.raises(ValueError, match="`burn_in_length` must be 0 with"):
            config(sampling="tape", burn_in_length=2)
        # The jaxtyping import hook of the test suite checks the `Literal` first.
        with pytest.raises((ValueError, TypeCheckError), match="sampling"):
            config(sampling="episodes")
        with pytest.raises(ValueError, match="`buffer_capacity` .* must hold"):
            config(buffer_capacity=8, sequence_length=4, burn_in_length=4)
        with pytest.raises(ValueError, match="`burn_in_length` must be a non-neg"):
            config(burn_in_length=-1)
        with pytest.raises(ValueError, match="`gamma` must lie in"):
            config(gamma=1.5)
        with pytest.raises(ValueError, match="`tau` must lie in"):
            config(tau=0.0)
        with pytest.raises(ValueError, match="`initial_alpha` must be positive"):
            config(initial_alpha=0.0)
    assert SACConfig().window_length == 2 and SACConfig().steps_per_update == 8
    sac, sacd = _cached("sac", "mlp"), _cached("sacd", "mlp")
    # The target entropies: -1 per action dimension; a fraction of log(actions).
    assert sac.target_entropy == -1.0
    np.testing.assert_allclose(sacd.target_entropy, 0.3 * np.log(2))
    state = sac.init(jr.key(0))
    with pytest.raises(ValueError, match="SAC.train: `num_steps` must be a pos"):
        sac.train(state, 0)
    with pytest.raises(ValueError, match="SAC.warmup: `num_steps` must be a pos"):
        sac.warmup(state, -1)
    # Wrong action spaces and heads fail at construction, naming the argument.
    pendulum, p_params = memrl_eqx.envs.make(PENDULUM)
    cartpole, c_params = memrl_eqx.envs.make(CARTPOLE)
    kwargs = dict(optimizer=optax.adam(1e-3))
    with pytest.raises(ValueError, match="SAC: `env` must have a 1-d Box"):
        SAC(
            env=cartpole,
            env_params=c_params,
            actor=sac.actor,
            critic=sac.critic,
            **kwargs,
        )
    with pytest.raises(ValueError, match="SACD: `env` must have a discrete"):
        SACD(
            env=pendulum,
            env_params=p_params,
            actor=sac.actor,
            critic=sac.critic,
            **kwargs,
        )
    ppo_actor, ppo_critic = memrl_eqx.actor_critic(
        pendulum, p_params, torso="mlp", features=8, key=jr.key(0)
    )
    with pytest.raises(ValueError, match="SAC: `actor` must be a `Network` with a"):
        SAC(
            env=pendulum,
            env_params=p_params,
            actor=ppo_actor,
            critic=sac.critic,
            **kwargs,
        )
    with pytest.raises(ValueError, match="SAC: `critic` must be a `Network` with"):
        SAC(
            env=pendulum,
            env_params=p_params,
            actor=sac.actor,
            critic=ppo_critic,
            **kwargs,
        )
    with pytest.raises(ValueError, match="SACD: `critic` must be a `Network` with"):
        SACD(
            env=cartpole,
            env_params=c_params,
            actor=sacd.actor,
            critic=sac.critic,
            **kwargs,
        )


def test_sac_networks_and_the_evaluation_actions():
    """`sac_networks` bounds the squashed Gaussian to the action box and gives
    twin critics; evaluation acts with the mean action through the tanh (SAC)
    and the most probable action (SACD)."""
    sac, sacd = _cached("sac", "mlp"), _cached("sacd", "mlp")
    assert isinstance(sac.actor.head, SquashedGaussian)
    assert sac.actor.head.low == (-2.0,) and sac.actor.head.high == (2.0,)
    assert isinstance(sac.critic.head, TwinContinuousQNetwork)
    assert isinstance(sacd.actor.head, Categorical)
    assert isinstance(sacd.critic.head, TwinDiscreteQNetwork)
    assert sacd.critic.head.action_dim == 2
    for algo, dim in ((sac, 3), (sacd, 4)):
        obs = jr.normal(jr.key(0), (dim,))
        timestep = Timestep(
            obs=obs,
            prev_action=jnp.zeros(
                algo.env.action_space(algo.env_params).shape, algo._action_dtype
            ),
            prev_reward=jnp.zeros(()),
            reset=jnp.ones((), bool),
        )
        carry = algo.actor.init_carry()
        _, action = algo._evaluation_action(algo.actor, carry, timestep, jr.key(1))
        _, again = algo._evaluation_action(algo.actor, carry, timestep, jr.key(2))
        assert jnp.array_equal(action, again)  # deterministic
        _, hidden = algo.actor.encode(carry, jtu.tree_map(lambda x: x[None], timestep))
        if algo is sac:
            mean = algo.actor.head.mean(hidden[0])
            np.testing.assert_allclose(action, 2.0 * jnp.tanh(mean), rtol=1e-6)
        else:
            logits = algo.actor.head.linear(hidden[0])
            assert int(action) == int(jnp.argmax(logits))


@pytest.mark.parametrize("kind,torso", [("sac", "gru"), ("sacd", "mlp")])
def test_warmup_fills_the_replay_and_train_waits_for_it(kind, torso):
    algo = _cached(kind, torso)
    two_updates = 2 * algo.config.steps_per_update
    traces = eqx.debug.get_num_traces(_sac._train_traced)
    state = algo.init(jr.key(0))
    # A window holds 2 + 3 + 1 = 6 steps and an update adds 2 per environment:
    # the replay can first sample at the 3rd update.
    state, first = algo.train(state, two_updates)
    state, second = algo.train(state, two_updates)
    learned = np.isfinite(np.concatenate([first["loss/critic"], second["loss/critic"]]))
    assert learned.tolist() == [False, False, True, True]
    assert second["step"].tolist() == [24, 32] and int(state.update) == 4
    for name in ("loss/actor", "loss/temperature", "alpha", "entropy", "q_value"):
        assert np.all(np.isfinite(second[name])), name
    # Warm-up: uniformly random actions over the whole action space.
    fresh = algo.warmup(algo.init(jr.key(1)), 40)
    assert int(fresh.step) == 40 and int(fresh.update) == 0
    assert bool(algo.replay.can_sample(fresh.replay))
    actions = np.asarray(fresh.replay.buffer.experience.action[:, :10])
    if kind == "sac":  # torques in [-2, 2], spread over the range
        assert actions.dtype == np.float32 and actions.shape == (4, 10, 1)
        assert np.all(np.abs(actions) <= 2.0) and np.ptp(actions) > 2.0
    else:
        assert actions.dtype == np.int32 and set(np.unique(actions)) == {0, 1}
    # The parameters train; evaluation runs whole episodes.
    trained, _ = algo.train(fresh, two_updates)
    assert not tree_allclose(_params(trained), _params(fresh))
    # One trace of the training loop for the three calls (none if another test
    # compiled this configuration already), never one per call.
    assert eqx.debug.get_num_traces(_sac._train_traced) - traces <= 1
    result = algo.evaluate(trained, jr.key(2), 3)
    assert result["return"].shape == (3,)
    if kind == "sac":  # 200 steps of rewards in [-16.3, 0]
        assert np.all(result["length"] == 200)
        assert np.all((result["return"] <= 0) & (result["return"] > -3300))


def test_target_critic_follows_by_polyak_averaging_every_period():
    algo = _make(
        "sac", "mlp", features=8, gradient_steps=1, tau=0.5, target_update_period=2
    )
    state = algo.warmup(algo.init(jr.key(0)), 40)
    target = lambda s: eqx.filter(s.target_critic, eqx.is_array)
    critic = lambda s: eqx.filter(s.critic, eqx.is_array)
    assert tree_allclose(target(state), critic(state))
    traces = eqx.debug.get_num_traces(_sac._train_traced)
    for update in range(3):
        previous = state
        state, _ = algo.train(state, algo.config.steps_per_update)
        if update % 2 == 0:  # half way from the old target to the new critic
            expected = jtu.tree_map(
                lambda t, c: t + 0.5 * (c - t), target(previous), critic(state)
            )
            assert tree_allclose(target(state), expected, rtol=1e-5, atol=1e-7)
            assert not tree_allclose(target(state), critic(state))
        else:  # untouched
            assert tree_allclose(target(state), target(previous))
    # The training loop was traced once for the three calls.
    assert eqx.debug.get_num_traces(_sac._train_traced) - traces == 1


def test_vmap_over_seeds_equals_separate_runs():
    keys = jr.split(jr.key(3), 2)

    def run(key):
        algo = _make("sac", "mlp", key=key, features=8)
        state = algo.warmup(algo.init(key), 40)
        return algo.train(state, 2 * algo.config.steps_per_update)

    states, metrics = eqx.filter_jit(eqx.filter_vmap(run))(keys)
    assert metrics["loss/critic"].shape == (2, 2)
    for i, key in enumerate(keys):
        state_i, metrics_i = eqx.filter_jit(run)(key)
        assert tree_allclose(
            metrics["loss/critic"][i], metrics_i["loss/critic"], rtol=1e-4, atol=1e-5
        )
        assert tree_allclose(
            jtu.tree_map(lambda x: x[i], _params(states)),
            _params(state_i),
            rtol=1e-4,
            atol=1e-5,
        )
    assert not jnp.allclose(metrics["loss/critic"][0], metrics["loss/critic"][1])


# ------------------------------------------------------------ stored carries
def test_stored_carries_are_what_the_networks_give_from_the_episode_start():
    """Both carries are stored with every step (the Flax original stored only
    the actor's). For sampled windows away from episode starts, the stored actor
    and critic carries equal running each network over the episode so far from
    its initial carry; both during warm-up (random actions) and training (policy
    actions; a zero learning rate keeps the networks those that acted)."""
    algo = _make(
        "sacd", "gru", optimizer=optax.set_to_zero(), num_envs=2, buffer_capacity=128
    )
    state = algo.warmup(algo.init(jr.key(0)), 2 * 50)
    state, _ = algo.train(state, 2 * 60)
    experience = state.replay.buffer.experience
    starts = np.asarray(episode_starts(experience))
    assert starts[:, :110].sum() > 4  # several episodes, under both policies
    sample = algo.replay.sample(state.replay, jr.key(1), ~episode_starts(experience))
    actor, critic = state.actor, state.critic
    encode = eqx.filter_jit(lambda net, ts: net.encode(net.init_carry(), ts)[0])
    for row, start, window in zip(
        np.asarray(sample.rows),
        np.asarray(sample.starts),
        jtu.tree_leaves(sample.data.carry[1])[0],
    ):
        first = np.flatnonzero(starts[row, : start + 1])[-1]
        assert first < start
        episode = jtu.tree_map(lambda x: x[row, first:start], experience.timestep)
        stored = jtu.tree_map(lambda c: c[row, start], experience.carry)
        assert tree_allclose(encode(actor, episode), stored[0], rtol=1e-5, atol=1e-6)
        assert tree_allclose(encode(critic, episode), stored[1], rtol=1e-5, atol=1e-6)
        # The sampled window starts from that stored carry.
        assert tree_allclose(window[0], stored[1])
        assert not np.allclose(stored[1], 0.0)


def test_tape_sampling_starts_at_episode_starts_from_initial_carries():
    algo = _make("sacd", "gru", sampling="tape", burn_in_length=0)
    state = algo.warmup(algo.init(jr.key(0)), 4 * 40)
    mask = episode_starts(state.replay.buffer.experience)
    sample = algo.replay.sample(state.replay, jr.key(1), mask)
    assert bool(jnp.all(sample.data.timestep.reset[:, 0]))
    state, metrics = algo.train(state, 2 * algo.config.steps_per_update)
    assert np.all(np.isfinite(metrics["loss/critic"]))
    # From an episode start, the initial carry and the stored one are the same
    # thing (the reset flag): tape and segments give the same losses there.
    segments = eqx.tree_at(
        lambda a: a.config, algo, dataclasses.replace(algo.config, sampling="segments")
    )
    params = (state.actor, state.critic, state.log_alpha)
    _, tape_aux = algo._loss(params, state.target_critic, sample.data, jr.key(2))
    _, seg_aux = segments._loss(params, state.target_critic, sample.data, jr.key(2))
    for name in ("loss/critic", "loss/actor", "q_value"):
        np.testing.assert_allclose(tape_aux[name], seg_aux[name], rtol=1e-5)


# ------------------------------------------------------------- the losses
def _leaves_zero(tree) -> bool:
    return all(bool(jnp.all(x == 0)) for x in jtu.tree_leaves(tree))


@pytest.mark.parametrize("kind,torso", [("sac", "gru"), ("sacd", "moe_gru")])
def test_gradients_stay_with_their_own_network(kind, torso):
    """One optimiser, three losses: the critic's loss reaches only the critic,
    the actor's only the actor (the critic's parameters and features are
    stop-gradiented in it), the temperature's only `log_alpha`."""
    algo = _cached(kind, torso) if torso == "gru" else _make(kind, torso, features=8)
    state = algo.warmup(algo.init(jr.key(0)), 48)
    sample = algo.replay.sample(state.replay, jr.key(1))
    params = (state.actor, state.critic, jnp.log(jnp.float32(0.3)))
    owner = {"loss/critic": 1, "loss/actor": 0, "loss/temperature": 2}

    @eqx.filter_jit
    def grads(params):
        loss = lambda p: algo._loss(p, state.target_critic, sample.data, jr.key(2))
        part = lambda name: eqx.filter_grad(lambda p: loss(p)[1][name])(params)
        return {name: part(name) for name in owner}, loss(params)[1]

    grads, aux = grads(params)
    for name, index in owner.items():
        for i in range(3):
            assert _leaves_zero(grads[name][i]) == (i != index), (name, i)
    if torso == "moe_gru":  # a router's load balancing, in each network's loss
        assert float(aux["loss/auxiliary"]) > 0


def _window(algo, obs, actions, rewards, terminated, truncated) -> Transition:
    length = obs.shape[0]
    init = (algo.actor.init_carry(), algo.critic.init_carry())
    return Transition(
        timestep=Timestep(
            obs=obs,
            prev_action=jnp.zeros((length,), jnp.int32),
            prev_reward=jnp.zeros((length,), jnp.float32),
            reset=jnp.zeros((length,), bool).at[0].set(True),
        ),
        carry=jtu.tree_map(lambda c: jnp.broadcast_to(c, (length,) + c.shape), init),
        action=actions,
        reward=rewards,
        terminated=terminated,
        truncated=truncated,
    )


def test_sacd_targets_and_losses_by_hand():
    """On tiny windows, the targets, critic loss, actor objective and entropy
    equal the formulas of Christodoulou (2019) computed in float64 from the
    networks' outputs: $y_t = r_t + \\gamma (1 - d_t) \\sum_a \\pi(a|o_{t+1})
    (\\min_i Q'_i(o_{t+1}, a) - \\alpha \\log \\pi(a|o_{t+1}))$, with no target
    where the step was cut by a time limit, and the target critic (not the
    online one) in the bootstrap."""
    algo = _make("sacd", "mlp", features=8, sequence_length=2, burn_in_length=0)
    gamma, alpha = 0.99, 0.3
    actor, critic = algo.actor, algo.critic
    target = eqx.combine(
        jtu.tree_map(
            lambda x: x + 0.5 * jr.normal(jr.key(5), x.shape),
            eqx.filter(critic, eqx.is_inexact_array),
        ),
        critic,
    )
    obs = jr.normal(jr.key(1), (3, 4))
    actions = jnp.array([1, 0, 1], jnp.int32)
    rewards = jnp.array([1.0, 0.5, -1.0], jnp.float32)
    no = jnp.zeros((3,), bool)
    cases = {  # (terminated, truncated) -> which of the 2 trained steps are valid
        "plain": (no, no),
        "terminated at 0": (no.at[0].set(True), no),
        "truncated at 1": (no, no.at[1].set(True)),
    }
    init = actor.init_carry(), critic.init_carry()
    timestep = _window(algo, obs, actions, rewards, no, no).timestep
    logits = np.asarray(actor(init[0], timestep)[1].logits, np.float64)
    log_pi = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
    pi = np.exp(log_pi)
    q = np.asarray(critic(init[1], timestep)[1], np.float64)  # (3, A, 2)
    q_target = np.asarray(target(init[1], timestep)[1], np.float64)
    assert not np.allclose(q, q_target)
    value = np.sum(pi * (q_target.min(-1) - alpha * log_pi), -1)
    for name, (terminated, truncated) in cases.items():
        window = _window(algo, obs, actions, rewards, terminated, truncated)
        _, out = eqx.filter_jit(algo._sequence)(
            actor, critic, target, window, jnp.float32(alpha), jr.key(0)
        )
        out = jax.device_get(out)
        d, cut = np.asarray(terminated, float), np.asarray(truncated)
        expected = np.asarray(rewards)[:2] + gamma * (1 - d[:2]) * value[1:]
        np.testing.assert_array_equal(out["valid"], ~cut[:2], err_msg=name)
        valid = ~cut[:2]
        np.testing.assert_allclose(
            out["targets"][valid], expected[valid], rtol=1e-5, err_msg=name
        )
        taken = q[np.arange(2), np.asarray(actions)[:2]]  # (2, twins)
        critic_loss = 0.5 * np.sum((taken - expected[:, None]) ** 2, -1)
        np.testing.assert_allclose(
            out["critic_loss"][valid], critic_loss[valid], rtol=1e-5, err_msg=name
        )
    actor_objective = np.sum(pi * (alpha * log_pi - q.min(-1)), -1)[:2]
    np.testing.assert_allclose(out["actor_objective"], actor_objective, rtol=1e-5)
    np.testing.assert_allclose(out["entropy"], -np.sum(pi * log_pi, -1)[:2], rtol=1e-5)
    np.testing.assert_allclose(
        out["q_taken"], q.min(-1)[np.arange(2), np.asarray(actions)[:2]], rtol=1e-5
    )


def test_sac_targets_use_the_target_critic_and_the_soft_value():
    """SAC's target, from the same sampled next action and log-probability that
    the actor's objective uses: with a zero temperature and reward 0 it is
    `gamma * min Q'(o_{t+1}, a')`; the temperature subtracts `gamma * alpha *
    log pi(a')`. Terminated steps bootstrap 0."""
    algo = _make("sac", "mlp", features=8, sequence_length=2, burn_in_length=0)
    actor, critic = algo.actor, algo.critic
    obs = jr.normal(jr.key(1), (3, 3))
    zeros = jnp.zeros((3,), jnp.float32)
    no = jnp.zeros((3,), bool)
    init = actor.init_carry(), critic.init_carry()

    def targets(alpha, terminated=no, rewards=zeros):
        window = Transition(
            timestep=Timestep(
                obs=obs,
                prev_action=jnp.zeros((3, 1)),
                prev_reward=zeros,
                reset=no.at[0].set(True),
            ),
            carry=jtu.tree_map(lambda c: jnp.broadcast_to(c, (3,) + c.shape), init),
            action=jnp.zeros((3, 1)),
            reward=rewards,
            terminated=terminated,
            truncated=no,
        )
        _, out = eqx.filter_jit(algo._sequence)(
            actor, critic, critic, window, jnp.float32(alpha), jr.key(7)
        )
        return np.asarray(out["targets"], np.float64)

    # The next action the target uses, drawn as `_terms` draws it.
    dist = actor(init[0], _window_timestep(obs))[1]
    sampled, log_prob = dist.sample_and_log_prob(seed=jr.key(7))
    q_next = critic(init[1], _window_timestep(obs), sampled)[1].min(-1)
    np.testing.assert_allclose(targets(0.0), 0.99 * q_next[1:], rtol=1e-5)
    np.testing.assert_allclose(
        targets(0.5) - targets(0.0), -0.99 * 0.5 * log_prob[1:], rtol=1e-4, atol=1e-5
    )
    rewards = jnp.array([1.0, 2.0, 3.0])
    terminated = no.at[1].set(True)
    np.testing.assert_allclose(
        targets(0.0, terminated, rewards), [1 + 0.99 * q_next[1], 2.0], rtol=1e-5
    )


def _window_timestep(obs):
    length = obs.shape[0]
    return Timestep(
        obs=obs,
        prev_action=jnp.zeros((length, 1)),
        prev_reward=jnp.zeros((length,)),
        reset=jnp.zeros((length,), bool).at[0].set(True),
    )


def test_truncation_is_not_termination():
    """ConstantReward: reward 1 every step, one observation, episodes cut by a
    time limit after 5 steps, both actions equal. The temperature falls towards
    0 (the uniform policy's entropy exceeds the target), so Q must approach
    1 + gamma / (1 - gamma) = 10 (gamma 0.9). Treating the time limit as a
    termination would pull it to the mean partial return, about 2.6."""
    algo = _make(
        "sacd",
        "mlp",
        env=ConstantReward(),
        features=8,
        optimizer=optax.adam(1e-2),
        num_envs=4,
        rollout_length=4,
        buffer_capacity=200,
        batch_size=32,
        sequence_length=1,
        burn_in_length=0,
        gamma=0.9,
        tau=0.1,
    )
    state = algo.warmup(algo.init(jr.key(0)), 64)
    state, metrics = algo.train(state, 1500 * algo.config.steps_per_update)
    assert float(metrics["alpha"][-1]) < 0.01
    np.testing.assert_allclose(metrics["q_value"][-20:].mean(), 10.0, rtol=0.05)
