"""The `memrl-eqx` command: train, resume, evaluate and plot runs; list environments.

`memrl-eqx train` with no options trains PPO with a GRU torso on POPGym's
RepeatPreviousEasy (a task a memoryless agent cannot solve) into a new run
directory under `runs/` (see `_run.py` for what it holds). The command line is
parsed and checked before JAX is imported, so `--help` and a bad option answer
at once.
"""

import argparse
import contextlib
import datetime
import os
import sys
from collections.abc import Iterator, Sequence

from . import _options as O, _run


_TRAIN_EPILOG = """\
configuration: every field of the algorithm's config class (PPOConfig, DQNConfig,
DQNConfig.r2d2(), PQNConfig, SACConfig, SACDConfig, StreamACConfig, and
IPPOConfig/MAPPOConfig: PPOConfig's fields and share_parameters) is set with
--set FIELD=VALUE
and the optimiser with --set optimizer.FIELD=VALUE (kind, learning_rate,
max_grad_norm, eps, weight_decay, schedule, decay_steps); --config FILE.toml reads
the options as top-level keys and [config] and [optimizer] tables (or a run's
config.json); the command line wins over the file. The config classes' defaults
are used as they are; what the command line chooses itself is the network
(`features` wide, PQN's with layer norm) and the optimiser: ppo adam(3e-4,
eps=1e-5) clipped at 0.5 (and so ippo/mappo, whose default env is
jaxmarl::MPE_simple_spread_v3), dqn/r2d2 adam(3e-4) clipped at 1.0, pqn radam(3e-4)
clipped at 10, sac/sacd adam(3e-4); stream_ac has no optimiser (its ObGD step
sizes are config fields) and the paper's networks (docs/running.md has the
details)."""


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


def _logger_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        O.check_loggers(names)
    except O.OptionError as error:
        raise argparse.ArgumentTypeError(str(error))
    return names


def _train_parser(commands) -> argparse.ArgumentParser:
    d = O.DEFAULTS
    train = commands.add_parser(
        "train",
        help="train an agent (or resume a run)",
        description="Train an agent (or resume a run).",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # so that what was given is known
    )
    add = train.add_argument
    add(
        "--config",
        metavar="FILE",
        help="a TOML file of options and [config]/[optimizer] tables, or a run's "
        "config.json (which trains that run again)",
    )
    add(
        "--set",
        metavar="FIELD=VALUE",
        action="append",
        dest="assignments",
        help="a config field (e.g. gamma=0.95, num_steps=256) or optimizer.FIELD "
        "(e.g. optimizer.learning_rate=1e-3); repeatable",
    )
    add("--algorithm", choices=O.ALGORITHMS, help="(default ppo)")
    add(
        "--env",
        help=f"environment id 'namespace::name' (default {O.DEFAULT_ENV}, for ippo "
        f"and mappo {O.DEFAULT_MULTI_AGENT_ENV}; `memrl-eqx envs` lists them)",
    )
    add("--torso", choices=O.TORSO_NAMES, help="(default gru)")
    add("--features", type=_positive_int, help="network width (default 64)")
    add(
        "--total-steps",
        type=_positive_int,
        help=f"environment steps per seed (default {d['total_steps']:_}), rounded "
        "up to whole updates; a replay method's warm-up comes on top; a resumed run "
        "may raise it to train longer",
    )
    add("--seed", type=int, help="the first seed (default 0)")
    add(
        "--seeds",
        type=_positive_int,
        help="seeds seed, seed+1, ... trained at once, in one vmapped call (default 1)",
    )
    add(
        "--warmup-steps",
        type=_positive_int,
        help="steps of random actions filling a replay method's buffer first "
        "(default: one batch of windows)",
    )
    add(
        "--eval-every",
        type=_positive_int,
        help="environment steps between greedy evaluations, logged as eval/return "
        "(default: only at the end; rounded to whole logs)",
    )
    add(
        "--eval-episodes",
        type=_positive_int,
        help="episodes per evaluation and seed (default 64)",
    )
    add(
        "--log-every",
        type=_positive_int,
        help=f"environment steps between logs (default {d['log_every']:_}; "
        "rounded to whole updates)",
    )
    add(
        "--checkpoint-every",
        type=_positive_int,
        help=f"environment steps between checkpoints (default "
        f"{d['checkpoint_every']:_}; rounded to whole logs; the last state is "
        "always checkpointed, and so is an interrupted run's)",
    )
    add(
        "--loggers",
        type=_logger_list,
        help="extra loggers, comma-separated: " + ", ".join(O.LOGGERS) + " (metrics."
        "jsonl and TensorBoard events are always written)",
    )
    add("--num-envs", type=_positive_int, help="shorthand for --set num_envs=N")
    add(
        "--learning-rate",
        type=float,
        help="shorthand for --set optimizer.learning_rate=LR (default 3e-4)",
    )
    where = train.add_mutually_exclusive_group()
    where.add_argument(
        "--logdir",
        help="parent folder of a new run directory named after the run (default runs)",
    )
    where.add_argument("--run-dir", help="the new run's directory, exactly")
    where.add_argument(
        "--resume", metavar="RUN_DIR", help="continue RUN_DIR from its checkpoint"
    )
    add(
        "--overwrite",
        action="store_true",
        help="replace an existing run directory (only a run directory)",
    )
    return train


_BENCH_EPILOG = """\
configuration: PPO with PPOConfig(gae_lambda=0.8) and adam(1e-3, eps=1e-5) clipped
at 0.5 (the preset examples/configs/ppo_popgym.toml) unless --set FIELD=VALUE,
--set optimizer.FIELD=VALUE or --config FILE.toml say otherwise; a file may hold
the options below as top-level keys (torsos, tasks, seeds, total_steps, features,
eval_episodes) and [config] and [optimizer] tables, and may be a training preset
(its env and torso are then not used). Running the same command again continues
the bench: finished cells are skipped, an unfinished one resumes from its last
checkpoint (docs/popgym_benchmark.md has the details)."""


def _bench_parser(commands) -> None:
    d = O.BENCH_DEFAULTS
    bench = commands.add_parser(
        "bench", help="run a benchmark into a resumable bench directory"
    )
    which = bench.add_subparsers(dest="benchmark", required=True, parser_class=_Parser)
    popgym = which.add_parser(
        "popgym",
        help="the POPGym memory benchmark with PPO",
        description="The POPGym benchmark (Morad et al., ICLR 2023) with PPO: every "
        "torso on every task, several seeds each, scored by MMER beside the "
        "published figures.",
        epilog=_BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add = popgym.add_argument
    add("--out", required=True, metavar="DIR", help="the bench directory")
    add(
        "--torsos",
        help=f"torso names, comma-separated (default {d['torsos']}; "
        f"choose from {', '.join(O.TORSO_NAMES)})",
    )
    add(
        "--tasks",
        help=f"POPGym task names with their level (e.g. RepeatFirstEasy) or levels "
        f"easy, medium, hard, all; comma-separated (default {d['tasks']})",
    )
    add("--seeds", type=_positive_int, help=f"seeds per cell (default {d['seeds']})")
    add(
        "--total-steps",
        type=_positive_int,
        help=f"environment steps per seed and cell (default {d['total_steps']:_})",
    )
    add("--features", type=_positive_int, help=f"width (default {d['features']})")
    add(
        "--eval-episodes",
        type=_positive_int,
        help=f"greedy evaluation episodes per seed (default {d['eval_episodes']})",
    )
    add("--config", metavar="FILE", help="a TOML file of options and tables")
    add(
        "--set",
        metavar="FIELD=VALUE",
        action="append",
        dest="assignments",
        help="a PPOConfig field or optimizer.FIELD; repeatable",
    )
    add(
        "--overwrite",
        action="store_true",
        help="replace the results of a bench directory of other settings",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="memrl-eqx", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    _train_parser(commands)
    _bench_parser(commands)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate the checkpointed policies of a run"
    )
    evaluate.add_argument("run", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=_positive_int, default=64)
    evaluate.add_argument(
        "--seed", type=int, default=None, help="(default: the run's evaluation keys)"
    )

    plot = commands.add_parser(
        "plot", help="learning curves of runs, mean and spread over seeds"
    )
    plot.add_argument("runs", metavar="RUN_DIR", nargs="+")
    plot.add_argument("--output", default="learning_curves.png", help="PNG to write")
    plot.add_argument("--key", default="return", help="metric to plot")

    envs = commands.add_parser("envs", help="list environment ids")
    envs.add_argument("namespace", nargs="?", default=None)
    envs.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also each environment's action kind and observation shape",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `memrl-eqx` and `python -m memrl_eqx`.

    The commands are `train` (a new run, or `--resume` one), `evaluate` (a run's
    checkpointed policies), `plot` (learning curves of runs), `bench popgym` (the
    POPGym benchmark into a resumable bench directory) and `envs` (list the
    environment ids); `memrl-eqx COMMAND --help` lists each one's options.

    **Arguments:** `argv`, the command line without the program's name, e.g.
    `["envs", "popgym"]`; by default `sys.argv[1:]`.

    **Returns:** the exit status, 0 on success (130 for an interrupted run). A
    bad command line, or a run that cannot be started, resumed or read, exits
    with status 2 and a one-line message (raising `SystemExit`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "envs":
            return _envs(args.namespace, args.verbose)
        if args.command == "train":
            return _train(args, argv)
        if args.command == "bench":
            return _bench(args, argv)
        if args.command == "evaluate":
            from ._evaluate import evaluate

            return evaluate(args.run, episodes=args.episodes, seed=args.seed)
        from ._plot_runs import plot_runs

        return plot_runs(args.runs, output=args.output, key=args.key)
    except (_run.RunError, O.OptionError) as error:
        parser.exit(2, f"memrl-eqx {args.command}: error: {error}\n")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Whatever is written to stdout inside (third-party import chatter, from
    Python or C) goes to stderr."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor (e.g. captured): Python-level only
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _describe(env_id: str) -> str:
    """`"discrete(n)  obs (shape)"` or why the environment cannot be made."""
    from ._build import make_env

    try:
        env, params = make_env(env_id)
        action = env.action_space(params)
        obs = env.observation_space(params)
        if hasattr(action, "n"):
            kind = f"discrete({action.n})"
        else:
            kind = f"continuous{tuple(action.shape)}"
        shape = getattr(obs, "shape", None)
        shape = type(obs).__name__ if shape is None else tuple(shape)
        return f"{kind}  obs {shape}"
    except Exception as error:  # an id whose backend fails to make it
        return f"unavailable: {type(error).__name__}: {str(error).splitlines()[0]}"


def _envs(namespace: str | None, verbose: bool) -> int:
    with _stdout_to_stderr():
        from ..envs import list_envs

        try:
            ids = list_envs(namespace)
        except (ValueError, ModuleNotFoundError) as error:
            raise _run.RunError(str(error)) from None
        lines = [f"{i}  {_describe(i)}" for i in ids] if verbose else ids
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------ train
def _given(args) -> tuple[dict, list[str], dict]:
    """The options, assignments and run-directory arguments given."""
    given = vars(args).copy()
    del given["command"]
    place = {
        key: given.pop(key)
        for key in ("logdir", "run_dir", "resume", "overwrite", "config")
        if key in given
    }
    assignments = given.pop("assignments", [])
    return given, assignments, place


def _command_line(given: dict, assignments: list[str]) -> dict:
    """The configuration the command line gives (without the file's)."""
    out = O.empty()
    for name, value in given.items():
        if name == "num_envs":
            out["config"]["num_envs"] = value
        elif name == "learning_rate":
            out["optimizer"]["learning_rate"] = value
        else:
            out["options"][name] = value
    for text in assignments:
        name, value = O.parse_assignment(text)
        if name.startswith("optimizer."):
            out["optimizer"][name.removeprefix("optimizer.")] = value
        else:
            out["config"][name] = value
    return out


def _train(args, argv: list[str]) -> int:
    given, assignments, place = _given(args)
    cli = _command_line(given, assignments)
    if "resume" in place:
        return _resume(place, cli)
    parts = [O.read_file(place["config"])] if "config" in place else []
    merged = O.merge(*parts, cli)
    options = {**O.DEFAULTS, **merged["options"]}
    if options["algorithm"] in O.MULTI_AGENT and "env" not in merged["options"]:
        options["env"] = O.DEFAULT_MULTI_AGENT_ENV
    O.check_options(options)
    algorithm = options["algorithm"]
    fields = O.coerce_config(algorithm, merged["config"])
    optimizer = O.resolve_optimizer(algorithm, merged["optimizer"])

    # The command line is sound: now JAX, the environment and the networks.
    from ._build import build_seeds, make_config, make_env, plan

    try:
        env, env_params = make_env(options["env"])
    except ValueError as error:
        raise O.OptionError(f"env: {error} (`memrl-eqx envs` lists every id)")
    agents = getattr(env, "num_agents", None)
    if algorithm in O.MULTI_AGENT and agents is None:
        raise O.OptionError(
            f"env: {options['env']} has one agent; {algorithm} needs a multi-agent "
            f"environment (e.g. --env {O.DEFAULT_MULTI_AGENT_ENV})"
        )
    if algorithm not in O.MULTI_AGENT and agents is not None:
        raise O.OptionError(
            f"env: {options['env']} has {agents} agents on a leading axis; "
            f"{algorithm} trains one agent (use --algorithm ippo or mappo)"
        )
    discrete = hasattr(env.action_space(env_params), "n")
    if algorithm in O.CONTINUOUS and discrete:
        raise O.OptionError(
            f"env: {options['env']} has discrete actions; {algorithm} needs "
            "continuous ones (e.g. --env gymnax::Pendulum-v1)"
        )
    if algorithm in O.DISCRETE and not discrete:
        raise O.OptionError(
            f"env: {options['env']} has continuous actions; {algorithm} needs "
            "discrete ones (use ppo or sac)"
        )
    _, values = make_config(algorithm, fields)
    resolved = {"options": options, "config": values, "optimizer": optimizer}
    steps = plan(resolved)
    if optimizer.get("schedule", "constant") != "constant" and (
        optimizer["decay_steps"] is None
    ):
        optimizer["decay_steps"] = steps["total_updates"] * steps["optimizer_steps"]
    try:
        seeds = build_seeds(resolved)
    except ValueError as error:  # networks that do not fit the environment
        raise O.OptionError(str(error).strip().splitlines()[0]) from None

    run_dir = place.get("run_dir")
    if run_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = options["env"].split("::")[-1]
        name = f"{algorithm}-{options['torso']}-{name}-s{options['seed']}-{stamp}"
        run_dir = os.path.join(place.get("logdir", "runs"), name)
    _run.create_run(run_dir, overwrite=place.get("overwrite", False))
    from ._train import train

    return train(resolved, run=run_dir, resume=False, command=argv, seeds=seeds)


def _bench(args, argv: list[str]) -> int:
    from . import _bench as B

    given = vars(args).copy()
    for key in ("command", "benchmark"):
        del given[key]
    out, overwrite = given.pop("out"), given.pop("overwrite", False)
    assignments = given.pop("assignments", [])
    file = O.read_file(given.pop("config"), B.KNOWN) if "config" in given else None
    resolved, ignored = B.resolve(file, given, assignments)
    if ignored:
        print(
            f"bench popgym: the file's {', '.join(ignored)} "
            f"{'is' if len(ignored) == 1 else 'are'} not used by the bench",
            file=sys.stderr,
        )
    return B.bench_popgym(resolved, out=out, overwrite=overwrite, command=argv)


def _resume(place: dict, cli: dict) -> int:
    run = place["resume"]
    if place.get("overwrite"):
        raise O.OptionError("--overwrite: a resumed run continues in place")
    if "config" in place or cli["config"] or cli["optimizer"]:
        raise O.OptionError(
            "--resume: a resumed run keeps its configuration (--config, --set, "
            "--num-envs and --learning-rate start a new run)"
        )
    resolved = _run.read_resolved(run)
    options = resolved["options"]
    for name, value in cli["options"].items():
        if name not in O.RESUMABLE and value != options.get(name):
            flag = "--" + name.replace("_", "-")
            raise O.OptionError(
                f"{flag} {value}: the run {run!r} was trained with "
                f"{options.get(name)!r}, and a resumed run keeps its configuration "
                "(start a new run to change it)"
            )
    options.update(cli["options"])
    O.check_options({**O.DEFAULTS, **options})
    from ._train import train

    return train(resolved, run=run, resume=True, command=[])


if __name__ == "__main__":
    sys.exit(main())
