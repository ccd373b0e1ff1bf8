"""A hyperparameter sweep as one compiled, vmapped program.

Hyperparameters that are numbers can be JAX arrays: `PPOConfig`'s floats (here
the entropy coefficient) are array leaves of the config, and a learning rate
lives in the optimiser's state when the optimiser is wrapped in
`optax.inject_hyperparams`. So a function that builds, trains and evaluates
PPO from `(key, learning_rate, entropy_coefficient)` can be vmapped over a
whole grid of settings × seeds, and trains every run side by side in one call.

This script sweeps the learning rate and the entropy coefficient of PPO with
an LRU torso on POPGym's RepeatPreviousEasy (chance is about -0.5, perfect play
1), prints one row per setting (the final training return and the greedy
evaluation return, mean ± standard deviation over the seeds) and writes the
same table as CSV.

Run it (about 5 minutes on 2 CPU cores):

    python examples/hyperparameter_sweep.py
    python examples/hyperparameter_sweep.py --learning-rates 1e-4 1e-3 \\
        --entropy-coefficients 0.01 --seeds 3 --out sweep.csv

`--smoke` runs a tiny budget, only to check that the script works.
"""

import argparse
import csv
import itertools
import time

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

import memrl_eqx
from memrl_eqx.algorithms import PPO, PPOConfig


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="popgym::RepeatPreviousEasy")
    parser.add_argument("--torso", default="lru", help="a name of memrl_eqx.TORSOS")
    parser.add_argument(
        "--learning-rates", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3]
    )
    parser.add_argument(
        "--entropy-coefficients", type=float, nargs="+", default=[0.0, 0.01]
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--out", default="hyperparameter_sweep.csv")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny budget, to test the script"
    )
    args = parser.parse_args()
    args.num_envs, args.num_steps = 32, 128  # steps per update: 32 * 128
    if args.smoke:
        args.total_steps, args.features, args.eval_episodes = 512, 8, 2
        args.num_envs, args.num_steps = 4, 64
    return args


def main():
    args = parse_args()
    env, env_params = memrl_eqx.envs.make(args.env)

    def run(key, learning_rate, entropy_coefficient):
        # One complete run. Inside the vmap below, `learning_rate` and
        # `entropy_coefficient` are traced scalars, one per run.
        model_key, train_key, eval_key = jr.split(key, 3)
        actor, critic = memrl_eqx.actor_critic(
            env, env_params, torso=args.torso, features=args.features, key=model_key
        )
        algo = PPO(
            config=PPOConfig(
                num_envs=args.num_envs,
                num_steps=args.num_steps,
                entropy_coefficient=entropy_coefficient,
            ),
            env=env,
            env_params=env_params,
            actor=actor,
            critic=critic,
            optimizer=optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.inject_hyperparams(optax.adam)(learning_rate, eps=1e-5),
            ),
        )
        state, metrics = algo.train(algo.init(train_key), args.total_steps)
        evaluation = algo.evaluate(state, eval_key, args.eval_episodes)
        # The final training return: the mean of the last (up to) five updates.
        final = jnp.nanmean(metrics["return"][-5:])
        return final, jnp.mean(evaluation["return"])

    # Every (learning rate, entropy coefficient, seed), flattened into one batch.
    settings = list(itertools.product(args.learning_rates, args.entropy_coefficients))
    grid = list(itertools.product(settings, range(args.seeds)))
    learning_rates = jnp.array([lr for (lr, _), _ in grid])
    entropy_coefficients = jnp.array([ent for (_, ent), _ in grid])
    seed_keys = jr.split(jr.key(0), args.seeds)
    keys = seed_keys[jnp.array([seed for _, seed in grid])]

    start = time.perf_counter()
    final, evaluation = eqx.filter_jit(eqx.filter_vmap(run))(
        keys, learning_rates, entropy_coefficients
    )
    seconds = time.perf_counter() - start
    # Back to one row per setting, one column per seed.
    final = np.asarray(final).reshape(len(settings), args.seeds)
    evaluation = np.asarray(evaluation).reshape(len(settings), args.seeds)

    rows = []
    print(f"{len(grid)} runs of {args.total_steps} steps in {seconds:.1f} s")
    print(f"{'lr':>8} {'entropy':>8} {'train return':>15} {'eval return':>15}")
    for (lr, ent), f, e in zip(settings, final, evaluation):
        print(
            f"{lr:>8.0e} {ent:>8.3f} {f.mean():>7.3f} ± {f.std():.3f}"
            f" {e.mean():>7.3f} ± {e.std():.3f}"
        )
        rows.append(
            dict(
                learning_rate=lr,
                entropy_coefficient=ent,
                train_return_mean=round(float(f.mean()), 4),
                train_return_std=round(float(f.std()), 4),
                eval_return_mean=round(float(e.mean()), 4),
                eval_return_std=round(float(e.std()), 4),
            )
        )
    with open(args.out, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"table: {args.out}")


if __name__ == "__main__":
    main()
