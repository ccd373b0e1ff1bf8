"""The `memrl-eqx` command: train an agent, list environments.

`memrl-eqx train` with no options trains PPO with a GRU torso on POPGym's
RepeatPreviousEasy (a task a memoryless agent cannot solve) and writes, into a
new run directory: TensorBoard events, `metrics.jsonl`, `config.json`, a
learning-curve PNG and a checkpoint of the final training state.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Sequence


ALGORITHMS = ("ppo", "dqn", "r2d2", "pqn", "sac", "sacd")
CONTINUOUS = ("sac",)  # algorithms for continuous actions; ppo takes both kinds
DEFAULT_ENV = "popgym::RepeatPreviousEasy"


class _Parser(argparse.ArgumentParser):
    """Reports a bad option as one line (plus a pointer to --help)."""

    def error(self, message):  # pyright: ignore[reportIncompatibleMethodOverride]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from ._agents import TORSOS

    parser = _Parser(prog="memrl-eqx", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    train = commands.add_parser("train", help="train an agent")
    train.add_argument("--algorithm", default="ppo", choices=ALGORITHMS)
    train.add_argument(
        "--env",
        default=DEFAULT_ENV,
        help=f"environment id 'namespace::name' (default {DEFAULT_ENV}; "
        "`memrl-eqx envs` lists them)",
    )
    train.add_argument("--torso", default="gru", choices=sorted(TORSOS))
    train.add_argument(
        "--total-steps",
        type=_positive_int,
        default=1_000_000,
        help="environment steps (default 1_000_000)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--features", type=_positive_int, default=64)
    train.add_argument("--num-envs", type=_positive_int, default=32)
    train.add_argument("--learning-rate", type=float, default=3e-4)
    train.add_argument(
        "--logdir", default="runs", help="parent folder of the run directory"
    )
    train.add_argument("--eval-episodes", type=_positive_int, default=64)
    envs = commands.add_parser("envs", help="list environment ids")
    envs.add_argument("namespace", nargs="?", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `memrl-eqx` and `python -m memrl_eqx`."""
    parser = _parser()
    args = parser.parse_args(argv)
    from .envs import list_envs, make

    if args.command == "envs":
        try:
            print("\n".join(list_envs(args.namespace)))
        except ValueError as error:
            parser.error(str(error))
        return 0
    try:
        env, env_params = make(args.env)
    except ValueError as error:
        parser.error(f"--env: {error} (`memrl-eqx envs` lists every id)")
    discrete = hasattr(env.action_space(env_params), "n")
    if args.algorithm in CONTINUOUS and discrete:
        parser.error(
            f"--env: {args.env} has discrete actions; {args.algorithm} needs "
            "continuous ones (e.g. --env gymnax::Pendulum-v1)"
        )
    if args.algorithm not in CONTINUOUS + ("ppo",) and not discrete:
        parser.error(
            f"--env: {args.env} has continuous actions; {args.algorithm} needs "
            "discrete ones (use ppo or sac)"
        )
    return _train(args, env, env_params)


def _build(args, env, env_params, key):
    """The algorithm `args.algorithm` with its default configuration, the
    options given, and networks with the torso `args.torso`.

    Returns `(algo, steps_per_update, warmup_steps)`; a replay method first fills
    its replay with one batch of windows of random actions.
    """
    import optax

    from . import algorithms as A
    from ._agents import actor_critic, q_network, sac_networks

    nets = dict(torso=args.torso, features=args.features, key=key)
    common = dict(env=env, env_params=env_params)
    name, n = args.algorithm, args.num_envs
    if name == "ppo":
        actor, critic = actor_critic(env, env_params, **nets)
        # Minibatches are whole environment trajectories: at most 4, dividing n.
        config = A.PPOConfig(num_envs=n, num_minibatches=math.gcd(4, n))
        optimizer = optax.chain(
            optax.clip_by_global_norm(0.5), optax.adam(args.learning_rate, eps=1e-5)
        )
        algo = A.PPO(
            config=config, actor=actor, critic=critic, optimizer=optimizer, **common
        )
        return algo, config.batch_size, 0
    if name in ("dqn", "r2d2"):
        config = (
            A.DQNConfig(num_envs=n, n_step=3)
            if name == "dqn"
            else (A.DQNConfig.r2d2(num_envs=n))
        )
        optimizer = optax.chain(
            optax.clip_by_global_norm(1.0), optax.adam(args.learning_rate)
        )
        algo = A.DQN(
            config=config,
            q_network=q_network(env, env_params, **nets),
            optimizer=optimizer,
            **common,
        )
        return algo, config.steps_per_update, config.batch_size * config.window_length
    if name == "pqn":
        config = A.PQNConfig(num_envs=n, num_minibatches=math.gcd(4, n))
        algo = A.PQN(
            config=config,
            q_network=q_network(env, env_params, layer_norm=True, **nets),
            optimizer=optax.chain(
                optax.clip_by_global_norm(10.0), optax.radam(args.learning_rate)
            ),
            **common,
        )
        return algo, config.batch_size, 0
    actor, critic = sac_networks(env, env_params, **nets)
    config = (A.SACConfig if name == "sac" else A.SACDConfig)(num_envs=n)
    algo = (A.SAC if name == "sac" else A.SACD)(
        config=config,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(args.learning_rate),
        **common,
    )
    return algo, config.steps_per_update, config.batch_size * config.window_length


def _train(args, env, env_params) -> int:
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import numpy as np
    from tensorboardX import SummaryWriter
    from tqdm import tqdm

    from ._checkpoint import save_checkpoint

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{args.algorithm}-{args.torso}-{args.env.split('::')[-1]}-s{args.seed}"
    run_dir = os.path.join(args.logdir, f"{name}-{stamp}")
    os.makedirs(run_dir, exist_ok=False)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(vars(args), f, indent=2)

    key = jr.key(args.seed)
    net_key, init_key, eval_key = jr.split(key, 3)
    algo, per_update, warmup_steps = _build(args, env, env_params, net_key)
    # Train in equal chunks of whole updates (one compilation), logging between:
    # about 32k environment steps per chunk.
    updates = math.ceil(args.total_steps / per_update)
    updates_per_chunk = max(1, min(updates, 32_768 // per_update))
    chunks = math.ceil(updates / updates_per_chunk)
    chunk_steps = updates_per_chunk * per_update
    total = chunks * chunk_steps

    print(f"run directory: {run_dir}", flush=True)
    writer = SummaryWriter(run_dir)
    steps, returns = [], []
    state = algo.init(init_key)
    if warmup_steps:
        state = algo.warmup(state, warmup_steps)
    bar = tqdm(
        total=total,
        unit="step",
        unit_scale=True,
        disable=not sys.stderr.isatty(),
        desc=f"{args.algorithm}/{args.torso}",
    )
    start = time.perf_counter()
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as log:
        for _ in range(chunks):
            state, metrics = algo.train(state, chunk_steps)
            metrics = jax.device_get(metrics)
            for i in range(updates_per_chunk):
                row = {k: float(v[i]) for k, v in metrics.items()}
                step = int(row.pop("step"))
                for k, v in row.items():
                    if np.isfinite(v):
                        writer.add_scalar(f"train/{k}", v, step)
                log.write(json.dumps({"step": step, **row}) + "\n")
                if np.isfinite(row["return"]):
                    steps.append(step)
                    returns.append(row["return"])
            bar.update(chunk_steps)
            bar.set_postfix(ret=f"{returns[-1]:.3g}" if returns else "n/a")
    bar.close()
    elapsed = time.perf_counter() - start

    evaluation = algo.evaluate(state, eval_key, args.eval_episodes)
    eval_return = float(jnp.mean(evaluation["return"]))
    writer.add_scalar("eval/return", eval_return, total)
    writer.close()
    save_checkpoint(os.path.join(run_dir, "checkpoint.eqx"), state)
    _plot(
        os.path.join(run_dir, "learning_curve.png"), steps, returns, name, eval_return
    )
    print(
        f"trained {total:,} steps in {elapsed:.1f}s ({total / elapsed:,.0f} steps/s, "
        f"compilation included); final evaluation return over "
        f"{args.eval_episodes} episodes: {eval_return:.3f}"
    )
    return 0


def _plot(path, steps, returns, title, eval_return) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(steps, returns, label="training episodes (mean per update)")
    if steps:
        ax.axhline(eval_return, color="k", ls="--", lw=1, label="final evaluation")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
