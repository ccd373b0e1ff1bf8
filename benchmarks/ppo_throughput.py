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
from _common import cartpole_ppo, machine, time_train


def measure(torso: str, updates: int, env_id: str) -> tuple[float, float, float]:
    algo = cartpole_ppo(torso, env_id)
    state = algo.init(jr.key(0))
    steps = updates * algo.config.batch_size
    compile_seconds, steady, state = time_train(algo, state, steps)
    rollout = jax.jit(lambda s: algo._rollout(s)[1])
    jax.block_until_ready(rollout(state))
    start = time.perf_counter()
    for _ in range(updates):
        jax.block_until_ready(rollout(state))
    share = (time.perf_counter() - start) / steady
    return compile_seconds, steps / steady, share


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
