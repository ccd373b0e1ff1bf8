"""Aggregate environment steps/s of PPO vmapped over seeds (issue 20).

The configuration is `ppo_throughput.py`'s (gymnax CartPole-v1, 32 envs x 128
steps, 4 epochs x 4 minibatches, hidden 64); `--seeds` independent runs are one
`eqx.filter_vmap` of `PPO.train` over their states, as the POPGym benchmark
harness and `memrl-eqx train --seeds N` run them. Each seed count is measured
in a fresh process; compile time is reported apart (the first call less a
steady one), steady time is the median of `--repeats` calls.

    python benchmarks/ppo_seeds.py [--torso gru] [--seeds 1 4 16] [--updates 5]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def measure(torso: str, seeds: int, updates: int, repeats: int) -> dict:
    import equinox as eqx
    import jax
    import jax.random as jr
    from _common import cartpole_ppo

    algo = cartpole_ppo(torso)
    states = eqx.filter_jit(eqx.filter_vmap(algo.init))(jr.split(jr.key(0), seeds))
    steps = updates * algo.config.batch_size
    train = eqx.filter_jit(
        lambda states: eqx.filter_vmap(lambda s: algo.train(s, steps)[1])(states)
    )
    start = time.perf_counter()
    jax.block_until_ready(train(states))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(train(states))
        times.append(time.perf_counter() - start)
    steady = statistics.median(times)
    return {"compile": first - steady, "rate": seeds * steps / steady}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torso", default="gru")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        print("RESULT " + json.dumps(measure(**job)), flush=True)
        return
    from _common import machine

    print(f"machine: {machine()}")
    print(
        f"\n| seeds | aggregate env steps/s | per seed | compile (s) |  ({args.torso})"
    )
    print("| --- | --- | --- | --- |")
    for seeds in args.seeds:
        job = dict(torso=args.torso, seeds=seeds, updates=args.updates)
        job["repeats"] = args.repeats
        out = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(job)],
            capture_output=True,
            text=True,
        )
        lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if not lines:
            print(f"| {seeds} | failed: {out.stderr.strip()[-200:]} | | |")
            continue
        r = json.loads(lines[-1][len("RESULT ") :])
        print(
            f"| {seeds} | {r['rate']:,.0f} | {r['rate'] / seeds:,.0f} "
            f"| {r['compile']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
