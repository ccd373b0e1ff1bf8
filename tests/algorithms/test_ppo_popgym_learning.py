"""The POPGym preset (`examples/configs/ppo_popgym.toml`) learns RepeatFirstEasy.

RepeatFirstEasy: name the suit of the first card dealt at every one of the 51
steps, +-1/51 a step, so chance is -0.5 and a perfect memory 1. With the
PPOConfig defaults (gae_lambda 0.95, learning rate 3e-4) a GRU stays at chance
(-0.42 MMER after 500k steps, -0.43 after 2M); this test fails with them. The
preset's lambda 0.8 and learning rate 1e-3 let it learn in a few hundred
thousand steps. The test reads the file's [config] and [optimizer] tables, so
the file cannot drift from what is tested; it trains narrower networks (64
features, the file says 128) for speed.
"""

import pathlib
import tomllib

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import memrl_eqx
from memrl_eqx._stack import stack
from memrl_eqx.algorithms import PPO, PPOConfig
from memrl_eqx.envs import make


pytestmark = pytest.mark.learning

PRESET = pathlib.Path(__file__).parents[2] / "examples/configs/ppo_popgym.toml"


def _preset():
    with open(PRESET, "rb") as f:
        preset = tomllib.load(f)
    opt = preset["optimizer"]
    assert opt["kind"] == "adam" and opt.get("schedule", "constant") == "constant"
    optimizer = optax.chain(
        optax.clip_by_global_norm(opt["max_grad_norm"]),
        optax.adam(opt["learning_rate"], eps=opt["eps"]),
    )
    return preset, PPOConfig(**preset["config"]), optimizer


def _train(torso, num_steps, seeds):
    preset, config, optimizer = _preset()
    env, params = make(preset["env"])
    algos = []
    for seed in seeds:
        actor, critic = memrl_eqx.actor_critic(
            env, params, torso=torso, features=64, key=jr.key(seed)
        )
        algos.append(
            PPO(
                config=config,
                env=env,
                env_params=params,
                actor=actor,
                critic=critic,
                optimizer=optimizer,
            )
        )
    algo = stack(algos)
    keys = jr.split(jr.key(100), len(seeds))
    states = eqx.filter_vmap(lambda a, k: a.init(k))(algo, keys)
    train = eqx.filter_vmap(lambda a, s: a.train(s, num_steps))
    states, metrics = train(algo, states)
    evaluate = eqx.filter_vmap(lambda a, s, k: a.evaluate(s, k, 64))
    evaluation = evaluate(algo, states, jr.split(jr.key(7), len(seeds)))
    mmer = np.nanmax(np.asarray(metrics["return"]), axis=1)
    return mmer, np.asarray(jnp.mean(evaluation["return"], axis=1))


def test_preset_reads_as_a_ppo_config():
    preset, config, _ = _preset()
    assert preset["algorithm"] == "ppo" and preset["torso"] == "gru"
    assert config.num_envs % config.num_minibatches == 0


def test_gru_learns_repeat_first_with_the_preset():
    # Reached at 500k steps: MMER 1.000 and 0.997, greedy evaluation 1.0 and
    # 1.0 (at 400k: MMER 0.983 and 0.789, seed 1 still rising); the curve
    # leaves chance at 150k-300k steps. With the PPOConfig defaults and 3e-4:
    # MMER -0.447 and -0.443 at 500k. Either figure at 0.9 counts as learned.
    mmer, evaluation = _train("gru", 500_000, seeds=(0, 1))
    assert np.all(np.maximum(mmer, evaluation) >= 0.9), (mmer, evaluation)


def test_memoryless_agent_stays_at_chance_on_repeat_first():
    # An MLP sees only the current card: at best the first step right, -0.47.
    _, evaluation = _train("mlp", 150_000, seeds=(0,))
    assert np.all(evaluation <= -0.3), evaluation
