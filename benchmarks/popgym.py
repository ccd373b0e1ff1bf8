"""Random-policy steps per second of every POPGym memory task (compile apart).

Each task runs `--num-envs` environments (4096 by default) under `vmap`, auto-
resetting, for `--steps` steps each inside one jitted `lax.scan`; actions are
drawn uniformly from the action space. The first call (compile + run) and the
best of three further calls are timed.

    python benchmarks/popgym.py [--levels Easy Medium Hard] [--tasks CountRecall ...]
        [--num-envs 4096] [--steps 128]
"""

import argparse
import time

import jax
import jax.numpy as jnp
from _common import machine

from memrl_eqx.envs import make, popgym


# Every task family, from the registry (each has an Easy preset).
FAMILIES = tuple(n[: -len("Easy")] for n in popgym._registry if n.endswith("Easy"))


def measure(env_id: str, num_envs: int, steps: int) -> tuple[float, float]:
    env, params = make(env_id)
    space = env.action_space(params)

    @jax.jit
    def run(key):
        reset_keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)

        def body(state, key):
            action_key, step_key = jax.random.split(key)
            actions = jax.vmap(space.sample)(jax.random.split(action_key, num_envs))
            step_keys = jax.random.split(step_key, num_envs)
            obs, state, reward, _, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                step_keys, state, actions, params
            )
            # Use the observations too, or XLA drops the dynamics of a task whose
            # reward does not depend on them (StatelessCartPole's is constant).
            seen = sum(jnp.sum(x.astype(jnp.float32)) for x in jax.tree.leaves(obs))
            return state, jnp.sum(reward) + seen

        _, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
        return jnp.sum(rewards)

    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.key(0)))
    first = time.perf_counter() - start
    best = float("inf")
    for seed in range(1, 4):
        start = time.perf_counter()
        jax.block_until_ready(run(jax.random.key(seed)))
        best = min(best, time.perf_counter() - start)
    return num_envs * steps / best, first - best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", nargs="+", default=["Easy"])
    parser.add_argument("--tasks", nargs="+", default=list(FAMILIES))
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=128)
    args = parser.parse_args()
    print(machine())
    print(f"{args.num_envs} envs x {args.steps} steps, random actions")
    print("| task | steps/s | compile (s) |\n| --- | --- | --- |")
    for task in args.tasks:
        for level in args.levels:
            rate, compile_time = measure(
                f"popgym::{task}{level}", args.num_envs, args.steps
            )
            print(f"| {task}{level} | {rate / 1e6:.2f}M | {compile_time:.1f} |")


if __name__ == "__main__":
    main()
