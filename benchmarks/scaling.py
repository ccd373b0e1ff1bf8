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
import time


def measure(updates: int) -> tuple[float, float]:
    """Run in the child process: (compile seconds, env steps/s) on all devices."""
    import jax
    import jax.random as jr
    import optax

    import memrl_eqx
    from memrl_eqx.algorithms import PPO, PPOConfig
    from memrl_eqx.envs import make

    env, params = make("gymnax::CartPole-v1")
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="gru", features=64, key=jr.key(0)
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
    mesh = jax.make_mesh((jax.device_count(),), ("envs",))
    state = memrl_eqx.shard(algo.init(jr.key(0)), mesh)
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
    assert len(state.timestep.reset.sharding.device_set) == jax.device_count()
    return first - steady, steps / steady


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
