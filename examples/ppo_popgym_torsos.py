"""Recurrent PPO on a POPGym memory task: which torso remembers?

RepeatPreviousEasy deals a card per step and asks for the suit of the card
dealt three steps earlier. The observation alone says nothing about that card,
so a memoryless agent stays at chance (a return of about -0.5), while an agent
with memory can reach the maximum of 1.

For each torso (any name of `memrl_eqx.TORSOS`), this script trains PPO with
several seeds at once, vmapping one compiled training run over the seeds'
keys, and draws every torso's learning curve (the mean over seeds, with the
range of the seeds shaded) into one PNG. It then prints each torso's final
training and evaluation returns.

Run it (about 4 minutes on 2 CPU cores):

    python examples/ppo_popgym_torsos.py
    python examples/ppo_popgym_torsos.py --torsos mlp gru --seeds 2 --out curves.png

`--smoke` runs a tiny budget, only to check that the script works.
"""

import argparse
import time

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import matplotlib


matplotlib.use("Agg")  # draw to a file; no display needed
import matplotlib.pyplot as plt
import numpy as np
import optax

import memrl_eqx
from memrl_eqx.algorithms import PPO, PPOConfig


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="popgym::RepeatPreviousEasy")
    parser.add_argument("--torsos", nargs="+", default=["mlp", "gru", "lru"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--total-steps", type=int, default=400_000)
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--out", default="ppo_popgym_torsos.png")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny budget, to test the script"
    )
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.total_steps, args.features = 2, 2 * 4 * 64, 8
        args.num_envs, args.num_steps, args.eval_episodes = 4, 64, 2
    return args


def train_torso(args, torso):
    """Train `args.seeds` runs of PPO with the torso called `torso`, vmapped over
    the seeds. Returns the metrics (each `(seeds, updates)`) and the evaluation
    returns (`(seeds,)`)."""
    env, env_params = memrl_eqx.envs.make(args.env)
    config = PPOConfig(
        num_envs=args.num_envs, num_steps=args.num_steps, num_minibatches=4
    )

    def run(key):
        # One complete run from one key: build, train, evaluate.
        model_key, train_key, eval_key = jr.split(key, 3)
        actor, critic = memrl_eqx.actor_critic(
            env, env_params, torso=torso, features=args.features, key=model_key
        )
        algo = PPO(
            config=config,
            env=env,
            env_params=env_params,
            actor=actor,
            critic=critic,
            optimizer=optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.adam(args.learning_rate, eps=1e-5),
            ),
        )
        state, metrics = algo.train(algo.init(train_key), args.total_steps)
        evaluation = algo.evaluate(state, eval_key, args.eval_episodes)
        return metrics, jnp.mean(evaluation["return"])

    # The same seeds for every torso, so the comparison is paired.
    keys = jr.split(jr.key(0), args.seeds)
    return eqx.filter_jit(eqx.filter_vmap(run))(keys)


def plot(results, args):
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for torso, (metrics, _) in results.items():
        steps = np.asarray(metrics["step"][0])
        # An update in which no episode ended reports NaN; leave it as a gap.
        returns = np.asarray(metrics["return"])
        (line,) = ax.plot(steps, returns.mean(axis=0), label=torso)
        low, high = returns.min(axis=0), returns.max(axis=0)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training episode return")
    ax.set_title(f"PPO on {args.env}: mean and range over {args.seeds} seeds")
    ax.legend(title="torso")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    plt.close(fig)


def main():
    args = parse_args()
    results = {}
    print(f"{'torso':<8} {'train return':>14} {'eval return':>14} {'seconds':>8}")
    for torso in args.torsos:
        start = time.perf_counter()
        metrics, evaluation = train_torso(args, torso)
        seconds = time.perf_counter() - start
        results[torso] = (metrics, evaluation)
        final = np.asarray(metrics["return"][:, -1])
        evaluation = np.asarray(evaluation)
        print(
            f"{torso:<8} {final.mean():>7.3f} ± {final.std():.3f}"
            f" {evaluation.mean():>7.3f} ± {evaluation.std():.3f} {seconds:>8.1f}",
            flush=True,
        )
    plot(results, args)
    print(f"learning curves: {args.out}")


if __name__ == "__main__":
    main()
