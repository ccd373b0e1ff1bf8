"""R2D2 with tape-based batching on a POPGym memory task.

R2D2 (Kapturowski et al. 2019) is recurrent DQN: it replays sequences, not
single transitions. By default a replayed window may start anywhere, so it
starts from the carry stored with its first step and refreshes it with a
burn-in. Tape-based batching (`sampling="tape"`, Morad et al. 2024) replays
windows that start at an episode start instead: they run from the initial
carry, with no stored state and no burn-in.

This script trains R2D2 with tape sampling on RepeatPreviousEasy (name the
suit of the card dealt three steps earlier; chance is about -0.5, perfect
play 1). Several seeds train at once: the algorithm and its state are PyTrees,
so `eqx.filter_vmap` builds and trains one per seed. Training runs in chunks,
printing progress after each, then every seed's greedy policy is evaluated.
The results (the training curve and the evaluation) are written as JSON.

Run it (about 5 minutes on 2 CPU cores):

    python examples/r2d2_tape.py
    python examples/r2d2_tape.py --torso gru --total-steps 300000 --out gru.json

`--smoke` runs a tiny budget, only to check that the script works.
"""

import argparse
import json
import time

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

import memrl_eqx
from memrl_eqx.algorithms import DQN, DQNConfig


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="popgym::RepeatPreviousEasy")
    parser.add_argument("--torso", default="lru", help="a name of memrl_eqx.TORSOS")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--total-steps", type=int, default=150_000)
    parser.add_argument("--chunks", type=int, default=10, help="progress reports")
    parser.add_argument("--warmup-steps", type=int, default=2_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--out", default="r2d2_tape.json")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny budget, to test the script"
    )
    args = parser.parse_args()
    args.num_envs, args.batch_size, args.buffer_capacity = 16, 32, 1_000
    args.sequence_length = 51
    if args.smoke:
        args.total_steps, args.chunks, args.warmup_steps = 512, 2, 256
        args.seeds, args.features, args.eval_episodes = 2, 8, 2
        args.num_envs, args.batch_size, args.buffer_capacity = 4, 4, 200
        args.sequence_length = 8
    return args


def make_algo(args, key):
    env, env_params = memrl_eqx.envs.make(args.env)
    q_network = memrl_eqx.q_network(
        env, env_params, torso=args.torso, features=args.features, key=key
    )
    # R2D2's recipe (prioritised replay, 5-step double-Q targets with value
    # rescaling), with windows that start at episode starts. A tape window has no
    # burn-in: it starts from the initial carry. RepeatPreviousEasy's episodes
    # last 51 steps, so a window of 51 + 5 steps covers a whole episode.
    config = DQNConfig.r2d2(
        sampling="tape",
        burn_in_length=0,
        sequence_length=args.sequence_length,
        num_envs=args.num_envs,
        batch_size=args.batch_size,
        buffer_capacity=args.buffer_capacity,  # steps per environment
        epsilon_decay_steps=args.total_steps / 3,
    )
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(args.learning_rate)
    )
    return DQN(
        config=config,
        env=env,
        env_params=env_params,
        q_network=q_network,
        optimizer=optimizer,
    )


def main():
    args = parse_args()
    start = time.perf_counter()
    keys = jr.split(jr.key(0), args.seeds)

    @eqx.filter_jit
    @eqx.filter_vmap
    def init(key):
        # One algorithm (with its own initial network) and one state per seed.
        network_key, state_key = jr.split(key)
        algo = make_algo(args, network_key)
        return algo, algo.warmup(algo.init(state_key), args.warmup_steps)

    chunk = args.total_steps // args.chunks
    train = eqx.filter_jit(
        eqx.filter_vmap(lambda algo, state: algo.train(state, chunk))
    )
    evaluate = eqx.filter_jit(
        eqx.filter_vmap(
            lambda algo, state, key: algo.evaluate(state, key, args.eval_episodes)
        )
    )

    algos, states = init(keys)
    steps, returns = [], []
    print(f"{'step':>8} {'train return':>13} {'epsilon':>8} {'loss':>8}")
    for _ in range(args.chunks):
        states, metrics = train(algos, states)
        # One entry per update (NaN for an update in which no episode ended);
        # the steps count the warmup's too.
        steps.append(int(metrics["step"][0, -1]))
        returns.append(np.nanmean(np.asarray(metrics["return"]), axis=1).tolist())
        print(
            f"{steps[-1]:>8} {np.nanmean(returns[-1]):>13.3f}"
            f" {float(metrics['epsilon'][0, -1]):>8.3f}"
            f" {np.nanmean(np.asarray(metrics['loss'])):>8.4f}",
            flush=True,
        )

    evaluation = evaluate(algos, states, jr.split(jr.key(1), args.seeds))
    per_seed = jnp.mean(evaluation["return"], axis=1).tolist()
    seconds = time.perf_counter() - start
    print(f"evaluation return per seed: {' '.join(f'{r:.3f}' for r in per_seed)}")
    print(f"evaluation return: {np.mean(per_seed):.3f}")
    print(f"time: {seconds:.1f} s")
    with open(args.out, "w") as f:
        results = dict(
            env=args.env,
            torso=args.torso,
            steps=steps,
            train_return=returns,
            evaluation_return=per_seed,
            seconds=seconds,
        )
        json.dump(results, f, indent=2)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
