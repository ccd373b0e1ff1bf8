"""PPO environment steps per second against the number of devices, with the
state split over them by `memrl_eqx.shard` (compile time reported apart).

Each device count runs in its own process with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`, so on a machine without
accelerators the "devices" are host CPU devices sharing the same cores: the
table then measures the overhead of partitioning, not a speed-up. On N real
devices the same script measures the scaling.

Configuration: gymnax CartPole-v1, GRU torso (hidden 64), 32 envs x 128 steps
per update, 4 epochs x 4 minibatches, adam 3e-4 with gradient clipping 0.5.

    python benchmarks/scaling.py [--devices 1 2 4] [--updates 10]
"""

import argparse
import os
import subprocess
import sys


def measure(updates: int) -> tuple[float, float]:
    """Run in the child process: (compile seconds, env steps/s) on all devices."""
    import jax
    import jax.random as jr
    from _common import cartpole_ppo, time_train

    import memrl_eqx

    algo = cartpole_ppo("gru")
    mesh = jax.make_mesh((jax.device_count(),), ("envs",))
    state = memrl_eqx.shard(algo.init(jr.key(0)), mesh)
    steps = updates * algo.config.batch_size
    compile_seconds, steady, state = time_train(algo, state, steps)
    assert len(state.timestep.reset.sharding.device_set) == jax.device_count()
    return compile_seconds, steps / steady


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        compile_seconds, sps = measure(args.updates)
        print(f"{compile_seconds} {sps}")
        return
    from _common import machine

    print(f"machine: {machine()}")
    print(
        f"| devices | env steps/s | compile (s) |  (PPO GRU, CartPole-v1, "
        f"32 envs x 128 steps, {args.updates} updates)"
    )
    print("| --- | --- | --- |")
    for n in args.devices:
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}"
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--updates", str(args.updates)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        compile_seconds, sps = map(float, out.split()[-2:])
        print(f"| {n} | {sps:,.0f} | {compile_seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
