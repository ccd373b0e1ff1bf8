"""`memrl-eqx bench popgym`: the POPGym benchmark ([`memrl_eqx.bench.popgym`][])
from the command line, configured like `memrl-eqx train` (`--config FILE`,
`--set FIELD=VALUE`, `--set optimizer.FIELD=VALUE`).

The options are read and checked before JAX is imported; a bench directory is
resumed by running the same command again.
"""

import shlex
import sys
from typing import Any

from . import _options as O


KNOWN = {**O.DEFAULTS, **O.BENCH_DEFAULTS}
"""The options a `--config` file may hold: the bench's, and `memrl-eqx train`'s
(so that a training preset such as `examples/configs/ppo_popgym.toml` serves
both); of the latter only `algorithm` (which must be ppo), `features`,
`total_steps`, `seeds` and `eval_episodes` apply to the bench."""


def _names(option: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise O.OptionError(
            f"{option}: expected names separated by commas, got {value!r}"
        )
    if not value:
        raise O.OptionError(f"{option}: name at least one")
    return value


def resolve(
    file: dict[str, dict[str, Any]] | None,
    options: dict[str, Any],
    assignments: list[str],
) -> tuple[dict[str, Any], list[str]]:
    """The bench's resolved options, PPO config fields and optimiser spec from a
    file's parts (or None), the command line's `options` and its `--set`
    assignments; and the names of the file's options that do not apply."""
    cli = O.empty()
    cli["options"].update(options)
    for text in assignments:
        name, value = O.parse_assignment(text)
        if name.startswith("optimizer."):
            cli["optimizer"][name.removeprefix("optimizer.")] = value
        else:
            cli["config"][name] = value
    merged = O.merge(*([file] if file else []), cli)
    ignored = [k for k in merged["options"] if k not in O.BENCH_DEFAULTS]
    algorithm = merged["options"].get("algorithm", "ppo")
    if algorithm != "ppo":
        raise O.OptionError(
            f"algorithm: the POPGym bench trains ppo, got {algorithm!r}"
        )
    opts = {**O.BENCH_DEFAULTS}
    opts.update({k: v for k, v in merged["options"].items() if k in opts})
    for name in ("seeds", "total_steps", "features", "eval_episodes"):
        value = opts[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise O.OptionError(f"{name}: expected a positive integer, got {value!r}")
    opts["torsos"] = _names("torsos", opts["torsos"])
    for torso in opts["torsos"]:
        if torso not in O.TORSO_NAMES:
            raise O.OptionError(
                f"torsos: unknown torso {torso!r}{O._closest(torso, O.TORSO_NAMES)}; "
                f"choose from {', '.join(O.TORSO_NAMES)}"
            )
    opts["tasks"] = _names("tasks", opts["tasks"])
    config = O.coerce_config("ppo", {**O.BENCH_CONFIG, **merged["config"]})
    optimizer = O.resolve_optimizer("ppo", {**O.BENCH_OPTIMIZER, **merged["optimizer"]})
    resolved = {"options": opts, "config": config, "optimizer": optimizer}
    return resolved, [k for k in ignored if k != "algorithm"]


def bench_popgym(
    resolved: dict[str, Any], *, out: str, overwrite: bool, command: list[str]
) -> int:
    """Run (or continue) the bench of `resolved` in the directory `out`; progress
    on stderr, the report's path on stdout. `command` is the command line,
    repeated in the message of an interrupt (running it again continues)."""
    import math

    from ..bench import BenchError, popgym
    from ..bench._popgym import resolve_tasks
    from ._build import make_config, make_optimizer
    from ._train import _Interrupts

    opts, spec = resolved["options"], dict(resolved["optimizer"])
    try:
        tasks = resolve_tasks(opts["tasks"])
    except ValueError as error:
        raise O.OptionError(str(error).removeprefix("popgym: ")) from None
    config, _ = make_config("ppo", resolved["config"])
    if spec["schedule"] != "constant" and spec["decay_steps"] is None:
        updates = math.ceil(opts["total_steps"] / config.batch_size)
        spec["decay_steps"] = updates * config.update_epochs * config.num_minibatches
    log = lambda line: print(line, file=sys.stderr, flush=True)
    with _Interrupts():
        try:
            popgym(
                out,
                torsos=opts["torsos"],
                tasks=tasks,
                seeds=opts["seeds"],
                total_steps=opts["total_steps"],
                config=config,
                optimizer=make_optimizer(spec),
                optimizer_record=spec,
                features=opts["features"],
                eval_episodes=opts["eval_episodes"],
                overwrite=overwrite,
                log=log,
            )
        except KeyboardInterrupt:
            again = [a for a in command if a != "--overwrite"]
            print(
                "interrupted: the finished cells are in results.jsonl and the "
                "unfinished one is checkpointed after its last chunk; continue "
                f"with `{shlex.join(['memrl-eqx', *again])}`",
                file=sys.stderr,
            )
            return 130
        except BenchError as error:
            raise O.OptionError(str(error).removeprefix("popgym: ")) from None
    print(f"{out}/results.md")
    return 0
