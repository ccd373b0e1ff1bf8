"""The `memrl-eqx` command: train, resume, evaluate and plot runs; list environments.

`memrl-eqx train` with no options trains PPO with a GRU torso on POPGym's
RepeatPreviousEasy (a task a memoryless agent cannot solve) into a new run
directory under `runs/` (see `_run.py` for what it holds).
"""

import argparse
import datetime
import importlib.util
import os
import sys
from collections.abc import Sequence

from . import _run


ALGORITHMS = ("ppo", "dqn", "r2d2", "pqn", "sac", "sacd")
CONTINUOUS = ("sac",)  # algorithms for continuous actions; ppo takes both kinds
LOGGERS = ("console", "dashboard", "wandb", "neptune")
_LOGGER_PACKAGES = {"dashboard": "rich", "wandb": "wandb", "neptune": "neptune"}
DEFAULT_ENV = "popgym::RepeatPreviousEasy"
DEFAULTS = dict(
    algorithm="ppo",
    env=DEFAULT_ENV,
    torso="gru",
    total_steps=1_000_000,
    seed=0,
    features=64,
    num_envs=32,
    learning_rate=3e-4,
    log_every=32_768,
    checkpoint_every=262_144,
    eval_episodes=64,
    loggers=[],
)
"""The defaults of the run options of `memrl-eqx train`."""


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
    for name in names:
        if name not in LOGGERS:
            raise argparse.ArgumentTypeError(
                f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}"
            )
        package = _LOGGER_PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise argparse.ArgumentTypeError(
                f"the {name} logger needs {package}, which is not installed: "
                f"pip install 'memrl_eqx[{name}]'"
            )
    return names


def _parser() -> argparse.ArgumentParser:
    from .._agents import TORSOS

    parser = _Parser(prog="memrl-eqx", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )
    train = commands.add_parser(
        "train",
        help="train an agent (or resume a run)",
        argument_default=argparse.SUPPRESS,  # so that a resume sees what was given
    )
    d = DEFAULTS
    train.add_argument("--algorithm", choices=ALGORITHMS, help="(default ppo)")
    train.add_argument(
        "--env",
        help=f"environment id 'namespace::name' (default {DEFAULT_ENV}; "
        "`memrl-eqx envs` lists them)",
    )
    train.add_argument("--torso", choices=sorted(TORSOS), help="(default gru)")
    train.add_argument(
        "--total-steps",
        type=_positive_int,
        help=f"environment steps (default {d['total_steps']:_}); a resumed run may "
        "raise it to train longer",
    )
    train.add_argument("--seed", type=int, help="(default 0)")
    train.add_argument("--features", type=_positive_int, help="(default 64)")
    train.add_argument("--num-envs", type=_positive_int, help="(default 32)")
    train.add_argument("--learning-rate", type=float, help="(default 3e-4)")
    train.add_argument(
        "--log-every",
        type=_positive_int,
        help=f"environment steps between logs (default {d['log_every']:_}; "
        "rounded to whole updates)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        help=f"environment steps between checkpoints (default "
        f"{d['checkpoint_every']:_}; rounded to whole logs; the last state is "
        "always checkpointed, and so is an interrupted run's)",
    )
    train.add_argument("--eval-episodes", type=_positive_int, help="(default 64)")
    train.add_argument(
        "--loggers",
        type=_logger_list,
        help="extra loggers, comma-separated: " + ", ".join(LOGGERS) + " (metrics."
        "jsonl and TensorBoard events are always written)",
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
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run directory (only a run directory)",
    )

    evaluate = commands.add_parser(
        "evaluate", help="evaluate the checkpointed policy of a run"
    )
    evaluate.add_argument("run", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=_positive_int, default=64)
    evaluate.add_argument(
        "--seed", type=int, default=None, help="(default: the run's evaluation key)"
    )

    plot = commands.add_parser(
        "plot", help="learning curves of runs, mean and spread over seeds"
    )
    plot.add_argument("runs", metavar="RUN_DIR", nargs="+")
    plot.add_argument("--output", default="learning_curves.png", help="PNG to write")
    plot.add_argument("--key", default="return", help="metric to plot")

    envs = commands.add_parser("envs", help="list environment ids")
    envs.add_argument("namespace", nargs="?", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `memrl-eqx` and `python -m memrl_eqx`.

    The commands are `train` (a new run, or `--resume` one), `evaluate` (a run's
    checkpointed policy), `plot` (learning curves of runs) and `envs` (list the
    environment ids); `memrl-eqx COMMAND --help` lists each one's options.

    **Arguments:** `argv`, the command line without the program's name, e.g.
    `["envs", "popgym"]`; by default `sys.argv[1:]`.

    **Returns:** the exit status, 0 on success. A bad command line, or a run
    that cannot be started, resumed or read, exits with status 2 and a message
    (through `argparse`, raising `SystemExit`).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "envs":
            from ..envs import list_envs

            try:
                print("\n".join(list_envs(args.namespace)))
            except ValueError as error:
                raise _run.RunError(str(error)) from None
            return 0
        if args.command == "train":
            return _train(parser, args)
        if args.command == "evaluate":
            from ._evaluate import evaluate

            return evaluate(args.run, episodes=args.episodes, seed=args.seed)
        from ._plot_runs import plot_runs

        return plot_runs(args.runs, output=args.output, key=args.key)
    except _run.RunError as error:
        parser.exit(2, f"memrl-eqx {args.command}: error: {error}\n")


def _train(parser, args) -> int:
    from ._build import make_env
    from ._train import train

    given = vars(args).copy()
    del given["command"]
    overwrite = given.pop("overwrite", False)
    logdir, run_dir = given.pop("logdir", "runs"), given.pop("run_dir", None)
    resume = given.pop("resume", None)
    if resume is not None:
        if overwrite:
            parser.error("--overwrite: a resumed run continues in place")
        return train({}, run=resume, resume=True, given=given)
    options = {**DEFAULTS, **given}
    # A run shorter than a log is logged once, at its end (the config records it,
    # so a resumed run keeps the same chunks).
    options["log_every"] = min(options["log_every"], options["total_steps"])
    try:
        env, env_params = make_env(options["env"])
    except ValueError as error:
        parser.error(f"--env: {error} (`memrl-eqx envs` lists every id)")
    discrete = hasattr(env.action_space(env_params), "n")
    algorithm = options["algorithm"]
    if algorithm in CONTINUOUS and discrete:
        parser.error(
            f"--env: {options['env']} has discrete actions; {algorithm} needs "
            "continuous ones (e.g. --env gymnax::Pendulum-v1)"
        )
    if algorithm not in CONTINUOUS + ("ppo",) and not discrete:
        parser.error(
            f"--env: {options['env']} has continuous actions; {algorithm} needs "
            "discrete ones (use ppo or sac)"
        )
    if run_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = options["env"].split("::")[-1]
        name = f"{algorithm}-{options['torso']}-{name}-s{options['seed']}-{stamp}"
        run_dir = os.path.join(logdir, name)
    _run.create_run(run_dir, overwrite=overwrite)
    return train(options, run=run_dir, resume=False, given=given)


if __name__ == "__main__":
    sys.exit(main())
