"""StreamAC environment steps per second (every step is an update), per torso
and number of streams (compile time reported apart).

The configuration is the paper's: `StreamACConfig()` on gymnax CartPole-v1,
networks from `stream_actor_critic` (sparse init, LayerNorm, leaky ReLU), one
stream unless `--num-envs` says otherwise. Alongside the wall-clock rate, the
process CPU time per step is printed, which a machine shared with other work
distorts less.

    python benchmarks/stream_ac_throughput.py [--torsos mlp rtrl_lru]
        [--features 128 64] [--num-envs 1 8] [--steps 20000]
"""

import argparse
import time

import jax
import jax.random as jr
from _common import machine

from memrl_eqx.algorithms import stream_actor_critic, StreamAC, StreamACConfig
from memrl_eqx.envs import make


def measure(torso: str, features: int, num_envs: int, steps: int, env_id: str):
    env, params = make(env_id)
    actor, critic = stream_actor_critic(
        env, params, torso=torso, features=features, key=jr.key(0)
    )
    config = StreamACConfig(num_envs=num_envs, num_steps=1000)
    algo = StreamAC(
        config=config, env=env, env_params=params, actor=actor, critic=critic
    )
    state = algo.init(jr.key(1))
    start = time.perf_counter()
    jax.block_until_ready(algo.train(state, steps)[1])
    first = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(algo.train(state, steps)[1])
    steady = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return first - steady, steps / steady, steps / cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torsos", nargs="+", default=["mlp", "rtrl_lru"])
    parser.add_argument("--features", nargs="+", type=int, default=[128, 64])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--env", default="gymnax::CartPole-v1")
    args = parser.parse_args()
    print(machine())
    print("| torso | features | streams | steps/s | steps per CPU-s | compile (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for torso in args.torsos:
        for features in args.features:
            for num_envs in args.num_envs:
                steps = args.steps * num_envs
                compile_seconds, rate, cpu_rate = measure(
                    torso, features, num_envs, steps, args.env
                )
                print(
                    f"| {torso} | {features} | {num_envs} | {rate:,.0f} | "
                    f"{cpu_rate:,.0f} | {compile_seconds:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
