"""Environment steps per second of every algorithm (compile time reported apart).

Each algorithm runs as `memrl-eqx train` builds it (its config class's
defaults, the command line's optimiser), a GRU torso of width 64, on gymnax
CartPole-v1 (SAC, which needs continuous actions, on Pendulum-v1; IPPO and
MAPPO on jaxmarl's MPE_simple_spread_v3, 3 agents a step). Replay methods are
measured after a warmup that fills their replay, so every update takes its
gradient steps.

    python benchmarks/algorithms.py [--algorithms ppo dqn ...] [--torso gru]
        [--steps 100000]
"""

import argparse

import jax
import jax.random as jr
from _common import machine, time_train

from memrl_eqx.cli import _options as O
from memrl_eqx.cli._build import build_algorithm, make_config, make_env, plan


ENVS = {"sac": "gymnax::Pendulum-v1"}
ENVS |= {name: O.DEFAULT_MULTI_AGENT_ENV for name in O.MULTI_AGENT}


def measure(name: str, torso: str, steps: int) -> tuple[float, float, int]:
    options = {**O.DEFAULTS, "algorithm": name, "torso": torso, "features": 64}
    options["env"] = ENVS.get(name, "gymnax::CartPole-v1")
    _, config = make_config(name, {})
    resolved = dict(
        options=options, config=config, optimizer=O.resolve_optimizer(name, {})
    )
    env, params = make_env(options["env"])
    algo = build_algorithm(resolved, env, params, jr.key(0))
    state = algo.init(jr.key(0))
    schedule = plan(resolved)
    per_update = schedule["steps_per_update"]
    if schedule["warmup_steps"]:
        state = jax.block_until_ready(algo.warmup(state, schedule["warmup_steps"]))
    steps = max(per_update, steps // per_update * per_update)
    compile_seconds, steady, _ = time_train(algo, state, steps)
    return compile_seconds, steps / steady, per_update


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", nargs="+", default=list(O.ALGORITHMS))
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
