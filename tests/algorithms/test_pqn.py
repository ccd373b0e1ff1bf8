import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
import pytest

import memrl_eqx
from memrl_eqx.algorithms import _pqn, linear_schedule, PQN, PQNConfig
from memrl_eqx.envs import EpisodeStatistics, make

from ..helpers import tree_allclose
from .envs_for_tests import ConstantReward


SMALL = PQNConfig(
    num_envs=4,
    num_steps=8,
    num_minibatches=2,
    update_epochs=2,
    epsilon_decay_steps=32,
)


# One environment object per id and one optimiser, so that tests building the same
# algorithm share its compiled training loop (`eqx.filter_jit` keys on the static
# fields, and a new optax transformation is a new set of closures).
@functools.cache
def _make_env(env_id):
    env, params = make(env_id)
    return EpisodeStatistics(env), params


_OPTIMIZER = optax.adam(3e-4)


def _make_pqn(torso="gru", config=SMALL, env_id="popgym::RepeatPreviousEasy", key=None):
    env, params = _make_env(env_id)
    q_network = memrl_eqx.q_network(
        env,
        params,
        torso=torso,
        features=16,
        layer_norm=True,
        key=key if key is not None else jr.key(0),
    )
    return PQN(
        config=config,
        env=env,
        env_params=params,
        q_network=q_network,
        optimizer=_OPTIMIZER,
    )


@pytest.mark.parametrize("torso", ["gru", "mlp"])
def test_train_and_evaluate_shapes(torso):
    algo = _make_pqn(torso)
    state = algo.init(jr.key(0))
    state, metrics = algo.train(state, 2 * SMALL.batch_size)
    assert int(state.step) == 2 * SMALL.batch_size
    assert metrics["step"].tolist() == [32, 64]
    for name in ("loss", "loss/td", "loss/auxiliary", "q_value", "epsilon", "episodes"):
        assert metrics[name].shape == (2,) and jnp.all(jnp.isfinite(metrics[name]))
    assert metrics["return"].shape == (2,) and metrics["length"].shape == (2,)
    result = algo.evaluate(state, jr.key(1), 3)
    assert result["return"].shape == (3,) and result["length"].shape == (3,)
    # RepeatPrevious returns lie in [-1, 1] and its episodes run to the deck's end.
    assert jnp.all(jnp.abs(result["return"]) <= 1.0 + 1e-5)
    assert jnp.all(result["length"] == result["length"][0])


def test_epsilon_follows_the_linear_schedule():
    """ε decays linearly in environment steps (all environments counted) from
    `epsilon_start` to `epsilon_end`, then stays; the metric is the rollout mean."""
    algo = _make_pqn("mlp")
    state, metrics = algo.train(algo.init(jr.key(0)), 2 * SMALL.batch_size)
    steps = jnp.arange(2 * SMALL.num_steps) * SMALL.num_envs
    epsilon = jax.vmap(lambda s: linear_schedule(s, 1.0, 0.05, 32.0))(steps)
    expected = epsilon.reshape(2, SMALL.num_steps).mean(axis=1)
    assert tree_allclose(metrics["epsilon"], expected, rtol=1e-5, atol=1e-6)
    # `epsilon_decay_steps` (32 environment steps) is one update: the second
    # update acts with `epsilon_end` throughout.
    assert float(metrics["epsilon"][0]) > 0.5
    assert tree_allclose(metrics["epsilon"][1], jnp.asarray(0.05))


def test_parameters_change_and_steps_round_up():
    algo = _make_pqn()
    state = algo.init(jr.key(0))
    # Rounds up to whole updates.
    new, metrics = algo.train(state, SMALL.batch_size + 1)
    assert metrics["step"].tolist() == [SMALL.batch_size, 2 * SMALL.batch_size]
    assert not tree_allclose(
        eqx.filter(new.q_network, eqx.is_array),
        eqx.filter(state.q_network, eqx.is_array),
    )


def test_update_replays_the_rollout_from_its_stored_carries():
    """Before any gradient step, the update's pass over each environment's
    trajectory (from the carry stored at the rollout start, with the episode starts
    inside it as resets) gives exactly the Q-values the agent acted with."""
    config = PQNConfig(num_envs=4, num_steps=48, num_minibatches=2)
    algo = _make_pqn("gru", config, env_id="gymnax::CartPole-v1")
    rollout_fn = eqx.filter_jit(algo._rollout)
    # Act once first, so that the stored carries are not the initial ones.
    state, _, _ = rollout_fn(algo.init(jr.key(0)))
    _, rollout, _ = rollout_fn(state)
    # Random CartPole episodes last ~20 steps: several resets inside the rollout.
    assert int(jnp.sum(rollout.timestep.reset)) >= 4
    env_major = lambda x: jnp.swapaxes(x, 0, 1)
    _, out = jax.vmap(state.q_network)(
        state.carry, jax.tree.map(env_major, rollout.timestep)
    )
    q_taken = jnp.take_along_axis(out, env_major(rollout.action)[..., None], axis=-1)
    assert tree_allclose(q_taken[..., 0], env_major(rollout.q_taken), atol=1e-5)
    assert tree_allclose(jnp.max(out, -1), env_major(rollout.value), atol=1e-5)


def test_update_is_traced_once_per_configuration():
    algo = _make_pqn()
    state = algo.init(jr.key(0))
    before = eqx.debug.get_num_traces(_pqn._train_traced)
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    # At most one trace (none if another test here compiled this configuration).
    first = eqx.debug.get_num_traces(_pqn._train_traced)
    assert first - before <= 1
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    state, _ = algo.train(state, 2 * SMALL.batch_size)
    assert eqx.debug.get_num_traces(_pqn._train_traced) == first
    # A new algorithm object of the same configuration reuses the trace too.
    again = _make_pqn(key=jr.key(5))
    again.train(again.init(jr.key(1)), 2 * SMALL.batch_size)
    assert eqx.debug.get_num_traces(_pqn._train_traced) == first


def test_vmap_over_seeds_equals_separate_runs():
    """`eqx.filter_vmap` trains several seeds at once; each equals its own run."""
    keys = jr.split(jr.key(3), 3)

    def run(key):
        algo = _make_pqn(key=key)
        return algo.train(algo.init(key), 2 * SMALL.batch_size)

    states, metrics = eqx.filter_jit(eqx.filter_vmap(run))(keys)
    for i, key in enumerate(keys):
        state_i, metrics_i = run(key)  # `init` and `train` are jitted themselves
        assert tree_allclose(
            metrics["loss"][i], metrics_i["loss"], rtol=1e-4, atol=1e-5
        )
        assert tree_allclose(
            eqx.filter(jax.tree.map(lambda x: x[i], states.q_network), eqx.is_array),
            eqx.filter(state_i.q_network, eqx.is_array),
            rtol=1e-4,
            atol=1e-5,
        )
    # Different seeds give different agents.
    assert not jnp.allclose(metrics["loss"][0], metrics["loss"][1])


def test_vmap_over_hyperparameters():
    """Float fields may be arrays: a sweep over λ and the ε schedule is one vmap."""
    td_lambdas = jnp.array([0.0, 0.65, 1.0])
    decays = jnp.array([32.0, 64.0, 1000.0])

    def run(td_lambda, decay):
        config = PQNConfig(
            num_envs=4,
            num_steps=8,
            num_minibatches=2,
            td_lambda=td_lambda,
            epsilon_decay_steps=decay,
        )
        algo = _make_pqn("mlp", config)
        return algo.train(algo.init(jr.key(0)), 2 * config.batch_size)[1]

    metrics = eqx.filter_jit(jax.vmap(run))(td_lambdas, decays)
    assert metrics["loss"].shape == (3, 2)
    # The ε schedules differ as configured: slower decay, larger ε.
    epsilon = metrics["epsilon"][:, 1]
    assert bool(epsilon[0] < epsilon[1] < epsilon[2])


def test_targets_bootstrap_at_time_limits_not_at_terminations():
    """Q(λ) targets by hand for one environment and three steps (γ = 0.5,
    λ = 0.5, reward scale 2): a truncation after step 0 bootstraps from the
    final observation's value, a termination after step 2 from nothing."""
    algo = _make_pqn(
        "mlp",
        PQNConfig(
            num_envs=4,
            num_steps=8,
            num_minibatches=2,
            gamma=0.5,
            td_lambda=0.5,
            reward_scale=2.0,
        ),
    )
    reward = jnp.array([[1.0], [1.0], [1.0]])
    value = jnp.array([[7.0], [4.0], [6.0]])  # max_a Q(o_t) while acting
    final_value = jnp.array([[8.0], [0.0], [0.0]])
    terminated = jnp.array([[False], [False], [True]])
    truncated = jnp.array([[True], [False], [False]])
    last_value = jnp.array([100.0])  # o_3 belongs to a new episode: unused
    targets = algo._targets(
        reward, value, final_value, terminated, truncated, last_value
    )
    g2 = 2.0  # terminated: r only
    g1 = 2.0 + 0.5 * (0.5 * 6.0 + 0.5 * g2)  # mixes max Q(o_2) and G_2
    g0 = 2.0 + 0.5 * 8.0  # truncated: bootstrap from the final observation
    assert tree_allclose(targets[:, 0], jnp.array([g0, g1, g2]))
    # With no episode end, the last step bootstraps from the network's value.
    none = jnp.zeros((3, 1), bool)
    targets = algo._targets(reward, value, final_value, none, none, last_value)
    g2 = 2.0 + 0.5 * 100.0
    g1 = 2.0 + 0.5 * (0.5 * 6.0 + 0.5 * g2)
    g0 = 2.0 + 0.5 * (0.5 * 4.0 + 0.5 * g1)
    assert tree_allclose(targets[:, 0], jnp.array([g0, g1, g2]))


def test_truncation_bootstraps_from_the_final_observation():
    """On a task cut by a time limit with a constant observation and reward 1,
    Q must approach 1 / (1 - gamma) = 10 for both actions; treating the time
    limit as a termination would pull it to the mean partial return, about 2.6
    (gamma 0.9, 5 steps)."""
    env = ConstantReward()
    params = env.default_params
    q_network = memrl_eqx.q_network(
        env, params, torso="mlp", features=8, layer_norm=True, key=jr.key(0)
    )
    config = PQNConfig(
        num_envs=8,
        num_steps=10,
        num_minibatches=1,
        update_epochs=4,
        gamma=0.9,
        td_lambda=0.9,
        epsilon_decay_steps=1000,
    )
    algo = PQN(
        config=config,
        env=env,
        env_params=params,
        q_network=q_network,
        optimizer=optax.adam(3e-3),
    )
    state, _ = algo.train(algo.init(jr.key(1)), 300 * config.batch_size)
    _, q_values = jax.vmap(_pqn._q_values, in_axes=(None, 0, 0))(
        state.q_network, state.carry, state.timestep
    )
    assert jnp.all(jnp.abs(q_values - 10.0) < 1.0), q_values


def test_bad_config_and_arguments():
    with pytest.raises(ValueError, match="num_minibatches"):
        PQNConfig(num_envs=6, num_minibatches=4)
    with pytest.raises(ValueError, match="num_envs"):
        PQNConfig(num_envs=0)
    with pytest.raises(ValueError, match="update_epochs"):
        PQNConfig(update_epochs=0)
    with pytest.raises(ValueError, match="gamma"):
        PQNConfig(gamma=1.5)
    with pytest.raises(ValueError, match="td_lambda"):
        PQNConfig(td_lambda=-0.1)
    with pytest.raises(ValueError, match="epsilon_end"):
        PQNConfig(epsilon_end=2.0)
    with pytest.raises(ValueError, match="epsilon_decay_steps"):
        PQNConfig(epsilon_decay_steps=0)
    env, params = _make_env("popgym::RepeatPreviousEasy")
    actor, _ = memrl_eqx.actor_critic(env, params, features=8, key=jr.key(0))
    with pytest.raises(ValueError, match="DiscreteQNetwork"):
        PQN(env=env, env_params=params, q_network=actor, optimizer=optax.adam(1e-3))
    algo = _make_pqn()
    state = algo.init(jr.key(0))
    with pytest.raises(ValueError, match="num_steps"):
        algo.train(state, -5)
    with pytest.raises(ValueError, match="num_episodes"):
        algo.evaluate(state, jr.key(0), 0)


def test_auxiliary_losses_reach_the_pqn_loss():
    """An MoE torso's load-balancing loss is part of what PQN minimises; a torso
    without one adds exactly zero."""
    moe = _make_pqn("moe_gru")
    _, metrics = moe.train(moe.init(jr.key(0)), 2 * SMALL.batch_size)
    auxiliary = metrics["loss/auxiliary"]
    assert auxiliary.shape == (2,) and jnp.all(auxiliary > 0)
    # The statistics of one minibatch, not of everything seen so far.
    assert jnp.all(auxiliary < 0.1)
    assert tree_allclose(metrics["loss"], metrics["loss/td"] + auxiliary, rtol=1e-5)
    gru = _make_pqn("gru")
    _, metrics = gru.train(gru.init(jr.key(0)), 2 * SMALL.batch_size)
    assert jnp.all(metrics["loss/auxiliary"] == 0)
