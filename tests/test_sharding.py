"""`memrl_eqx.shard`: a run whose environments are split over 4 devices equals a
1-device run of the same global batch (up to float32 reduction order); the
environment-batched leaves (and the replay's storage) stay split; composes with
`eqx.filter_vmap` over seeds; bad meshes and batch sizes fail clearly.

The multi-device checks run in a subprocess with 4 forced host CPU devices (the
test process has one)."""

import os
import subprocess
import sys
import textwrap
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
import pytest
from jax.sharding import PartitionSpec as P

import memrl_eqx
from memrl_eqx.algorithms import PPO, PPOConfig

from .helpers import FAST_XLA_FLAGS


_SCRIPT = textwrap.dedent(
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import jax.tree_util as jtu
    import optax

    import memrl_eqx
    from memrl_eqx.algorithms import DQN, DQNConfig, PPO, PPOConfig

    assert jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("envs",))
    env, params = memrl_eqx.envs.make("gymnax::CartPole-v1")

    def max_diff(a, b):
        a, b = eqx.filter(a, eqx.is_inexact_array), eqx.filter(b, eqx.is_inexact_array)
        diffs = jtu.tree_map(lambda x, y: jnp.max(jnp.abs(x - y)), a, b)
        return max(float(d) for d in jtu.tree_leaves(diffs))

    def check_close(a, b, what, tol=1e-4):
        assert jtu.tree_structure(a) == jtu.tree_structure(b), what
        diff = max_diff(a, b)
        assert diff <= tol, f"{what}: max |diff| {diff}"

    def check_metrics(m1, m2, what):
        assert m1.keys() == m2.keys()
        for k in m1:
            x, y = jnp.asarray(m1[k]), jnp.asarray(m2[k])
            assert jnp.array_equal(jnp.isnan(x), jnp.isnan(y)), (what, k)
            ok = jnp.allclose(x, y, rtol=1e-4, atol=1e-4, equal_nan=True)
            assert bool(ok), (what, k, x, y)

    def check_split(tree, what, spec=jax.sharding.PartitionSpec("envs")):
        leaves = jtu.tree_leaves(tree)
        assert leaves, what
        for leaf in leaves:
            assert leaf.sharding.spec == spec, (what, leaf.sharding)
            assert len(leaf.sharding.device_set) == 4, what

    def check_replicated(tree, what):
        for leaf in jtu.tree_leaves(eqx.filter(tree, eqx.is_array)):
            assert leaf.sharding.is_fully_replicated, (what, leaf.sharding)

    # ---------------------------------------------------------------- PPO
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="gru", features=8, key=jr.key(0)
    )
    ppo = PPO(
        config=PPOConfig(num_envs=8, num_steps=16, num_minibatches=2, update_epochs=2),
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )
    ppo_steps = 2 * ppo.config.batch_size
    init = ppo.init(jr.key(1))
    single, single_metrics = ppo.train(init, ppo_steps)
    sharded = memrl_eqx.shard(init, mesh)
    check_split((sharded.env_state, sharded.timestep, sharded.actor_carry), "ppo in")
    check_replicated((sharded.actor, sharded.opt_state, sharded.key), "ppo in")
    multi, multi_metrics = ppo.train(sharded, ppo_steps)
    assert max_diff(single.actor, init.actor) > 1e-3  # training happened
    check_close(single.actor, multi.actor, "ppo actor")
    check_close(single.critic, multi.critic, "ppo critic")
    check_close(single.opt_state, multi.opt_state, "ppo optimiser")
    check_metrics(single_metrics, multi_metrics, "ppo")
    check_split(
        (multi.env_state, multi.timestep, multi.actor_carry, multi.critic_carry),
        "ppo out",
    )
    check_replicated((multi.actor, multi.critic, multi.opt_state), "ppo out")
    assert bool(jnp.all(jnp.isfinite(multi_metrics["loss"])))

    # ---------------------------------------------------------------- DQN
    q = memrl_eqx.q_network(env, params, torso="gru", features=8, key=jr.key(0))
    config = DQNConfig(
        num_envs=8,
        rollout_length=4,
        buffer_capacity=32,
        batch_size=8,
        sequence_length=4,
        burn_in_length=2,
        n_step=2,
        target_update_period=2,
        prioritised=True,
    )
    dqn = DQN(
        config=config, env=env, env_params=params, q_network=q,
        optimizer=optax.adam(1e-3),
    )
    steps = 2 * config.steps_per_update
    init = dqn.init(jr.key(2))
    single, single_metrics = dqn.train(dqn.warmup(init, 64), steps)
    sharded = memrl_eqx.shard(init, mesh)
    check_split((sharded.acting, sharded.replay.buffer.experience), "dqn in")
    multi, multi_metrics = dqn.train(dqn.warmup(sharded, 64), steps)
    assert max_diff(single.q_network, init.q_network) > 1e-4  # training happened
    check_close(single.q_network, multi.q_network, "dqn q_network")
    check_close(single.replay, multi.replay, "dqn replay")
    check_metrics(single_metrics, multi_metrics, "dqn")
    check_split(
        (multi.acting, multi.replay.buffer.experience, multi.replay.priorities),
        "dqn out",
    )
    check_replicated(
        (multi.q_network, multi.replay.buffer.current_index, multi.key), "dqn out"
    )

    # ------------------------------------------- eqx.filter_vmap over seeds
    keys = jr.split(jr.key(3), 2)
    inits = eqx.filter_vmap(ppo.init)(keys)
    train = eqx.filter_jit(eqx.filter_vmap(lambda s: ppo.train(s, ppo_steps)))
    singles, singles_metrics = train(inits)
    shardeds = memrl_eqx.shard(inits, mesh, vmapped_axes=1)
    split = jax.sharding.PartitionSpec(None, "envs")
    check_split((shardeds.env_state, shardeds.actor_carry), "vmap in", split)
    multis, multis_metrics = train(shardeds)
    check_close(singles.actor, multis.actor, "vmap actor")
    check_metrics(singles_metrics, multis_metrics, "vmap")
    check_split((multis.env_state, multis.timestep), "vmap out", split)
    # Each seed is the run that seed makes alone.
    alone, _ = ppo.train(jtu.tree_map(lambda x: x[1], inits), ppo_steps)
    check_close(alone.actor, jtu.tree_map(lambda x: x[1], multis.actor), "seed 1")

    # ------------------------------------------------------------- errors
    # 6 environments over 4 devices: refused, naming both numbers.
    six = eqx.tree_at(lambda a: a.config, ppo, PPOConfig(num_envs=6, num_minibatches=2))
    try:
        memrl_eqx.shard(six.init(jr.key(0)), mesh)
    except ValueError as e:
        assert "num_envs (6)" in str(e) and "(4)" in str(e) and "'envs'" in str(e), e
    else:
        raise AssertionError("6 environments split over 4 devices")
    # Another mesh axis replicates: 8 environments over the 2 devices of 'envs'.
    two = memrl_eqx.shard(dqn.init(jr.key(0)), jax.make_mesh((2, 2), ("a", "envs")))
    assert two.replay.priorities.sharding.spec == jax.sharding.PartitionSpec("envs")
    assert two.replay.priorities.addressable_shards[0].data.shape == (4, 32)
    print("SHARDING OK")
    """
)


def test_four_devices_equal_one():
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join(
        filter(
            None,
            [
                env.get("XLA_FLAGS", ""),
                "--xla_force_host_platform_device_count=4",
                FAST_XLA_FLAGS,
            ],
        )
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_OPTIMIZATION_LEVEL"] = "O0"  # compile as the tests do
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "SHARDING OK" in result.stdout


def _ppo(num_envs: int = 6) -> PPO:
    env, params = memrl_eqx.envs.make("gymnax::CartPole-v1")
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="gru", features=4, key=jr.key(0)
    )
    return PPO(
        config=PPOConfig(num_envs=num_envs, num_steps=4, num_minibatches=1),
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )


def test_errors():
    state = _ppo(6).init(jr.key(0))
    mesh = jax.make_mesh((1,), ("devices",))
    with pytest.raises(ValueError, match=r"no axis 'envs'.*\('devices',\)"):
        memrl_eqx.shard(state, mesh)
    with pytest.raises(ValueError, match=r"no axis 'batch'.*\('devices',\)"):
        memrl_eqx.shard(state, mesh, axis="batch")
    with pytest.raises(ValueError, match="vmapped_axes"):
        memrl_eqx.shard(state, mesh, axis="devices", vmapped_axes=-1)
    with pytest.raises(ValueError, match="no axis after the 1 vmapped"):
        memrl_eqx.shard(state, mesh, axis="devices", vmapped_axes=1)
    with pytest.raises(ValueError, match="no environment-batched leaves"):
        memrl_eqx.shard({"w": jnp.zeros(3)}, mesh, axis="devices")


def test_placement_follows_fields_not_shapes():
    # features == num_envs: the observation layer's weight has 4 rows, as the
    # environment batch has, and must still be replicated.
    env, params = memrl_eqx.envs.make("gymnax::CartPole-v1")
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="gru", features=4, key=jr.key(0)
    )
    algo = PPO(
        config=PPOConfig(num_envs=4, num_steps=4, num_minibatches=1),
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )
    state = memrl_eqx.shard(algo.init(jr.key(0)), jax.make_mesh((1,), ("envs",)))
    weight = state.actor.feature_extractor.observation_extractor.layers[1].weight
    assert weight.shape[0] == 4 and weight.sharding.spec == P()
    for leaf in jax.tree_util.tree_leaves((state.env_state, state.actor_carry)):
        assert leaf.shape[0] == 4 and leaf.sharding.spec == P("envs")
    assert state.key.sharding.spec == P() and state.step.sharding.spec == P()


def test_custom_state_declares_its_fields():
    class State(eqx.Module):
        obs: jax.Array
        weight: jax.Array
        env_batched_fields: ClassVar[tuple[str, ...]] = ("obs",)

    class Typo(State):
        env_batched_fields: ClassVar[tuple[str, ...]] = ("obs", "observation")

    mesh = jax.make_mesh((1,), ("envs",))
    placed = memrl_eqx.shard({"s": State(jnp.zeros((3, 2)), jnp.zeros((3, 2)))}, mesh)
    assert placed["s"].obs.sharding.spec == P("envs")
    assert placed["s"].weight.sharding.spec == P()
    with pytest.raises(ValueError, match=r"Typo names \['observation'\]"):
        memrl_eqx.shard(Typo(jnp.zeros((3, 2)), jnp.zeros((3, 2))), mesh)
