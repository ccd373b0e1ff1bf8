"""Environment steps per second of every algorithm (compile time reported apart).

Each algorithm runs with its default configuration (as `memrl-eqx train` uses
it), a GRU torso of width 64, on gymnax CartPole-v1 (SAC, which needs continuous
actions, on Pendulum-v1). Replay methods are measured after a warmup that fills
their replay, so every update takes its gradient steps.

    python benchmarks/algorithms.py [--algorithms ppo dqn ...] [--torso gru]
        [--steps 100000]
"""

import argparse

import jax
import jax.random as jr
from _common import machine, time_train

from memrl_eqx.cli._build import build_algorithm
from memrl_eqx.cli._main import ALGORITHMS
from memrl_eqx.envs import make


def measure(name: str, torso: str, steps: int) -> tuple[float, float, int]:
    env_id = "gymnax::Pendulum-v1" if name == "sac" else "gymnax::CartPole-v1"
    env, params = make(env_id)
    config = dict(
        algorithm=name,
        torso=torso,
        features=64,
        num_envs=32 if name == "ppo" else 16,
        learning_rate=3e-4,
    )
    algo, per_update, warmup = build_algorithm(config, env, params, jr.key(0))
    state = algo.init(jr.key(0))
    if warmup:
        state = jax.block_until_ready(algo.warmup(state, warmup))
    steps = max(per_update, steps // per_update * per_update)
    compile_seconds, steady, _ = time_train(algo, state, steps)
    return compile_seconds, steps / steady, per_update


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    parser.add_argument("--torso", default="gru")
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        "| algorithm | env steps/s | compile (s) | env steps per update |"
        f"  (torso {args.torso})"
    )
    print("| --- | --- | --- | --- |")
    for name in args.algorithms:
        compile_seconds, sps, per_update = measure(name, args.torso, args.steps)
        print(
            f"| {name} | {sps:,.0f} | {compile_seconds:.1f} | {per_update} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
