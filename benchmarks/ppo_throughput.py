"""PPO environment steps per second, per torso (compile time reported apart).

The configuration is the Flax original's measured one: gymnax CartPole-v1,
32 envs x 128 steps per update, 4 epochs x 4 minibatches, hidden size 64,
adam 3e-4 with gradient clipping 0.5.

    python benchmarks/ppo_throughput.py [--torsos gru lru mlp] [--updates 20]

Where the time goes: the rollout column is the share of an update spent
collecting its 32 x 128 steps (the jitted rollout alone, timed the same way);
the rest is the learner (GAE, 4 epochs x 4 minibatches of forward+backward).
"""

import argparse
import time

import jax
import jax.random as jr
import optax
from _common import machine

import memrl_eqx
from memrl_eqx.algorithms import PPO, PPOConfig
from memrl_eqx.envs import make


def measure(torso: str, updates: int, env_id: str) -> tuple[float, float, float]:
    env, params = make(env_id)
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso=torso, features=64, key=jr.key(0)
    )
    config = PPOConfig(num_envs=32, num_steps=128, num_minibatches=4, update_epochs=4)
    algo = PPO(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-4)),
    )
    state = algo.init(jr.key(0))
    steps = updates * config.batch_size
    # Compilation: the first call of the jitted loop, less one steady-state run.
    start = time.perf_counter()
    state, metrics = algo.train(state, steps)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = algo.train(state, steps)
    jax.block_until_ready(metrics)
    steady = time.perf_counter() - start
    rollout = jax.jit(lambda s: algo._rollout(s)[1])
    jax.block_until_ready(rollout(state))
    start = time.perf_counter()
    for _ in range(updates):
        jax.block_until_ready(rollout(state))
    share = (time.perf_counter() - start) / steady
    return first - steady, steps / steady, share


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torsos", nargs="+", default=["gru", "lru", "mlp"])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--env", default="gymnax::CartPole-v1")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"| torso | env steps/s | compile (s) | rollout share |  "
        f"({args.env}, {args.updates} updates)"
    )
    print("| --- | --- | --- | --- |")
    for torso in args.torsos:
        compile_seconds, sps, share = measure(torso, args.updates, args.env)
        print(
            f"| {torso} | {sps:,.0f} | {compile_seconds:.1f} | {share:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
