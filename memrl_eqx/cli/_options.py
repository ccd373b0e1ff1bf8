"""What a run is made of, read from the command line and from config files,
without importing JAX (so that `--help` and a bad option answer at once).

A run's configuration has three parts, the same in a TOML file, in the
`config.json` that `memrl-eqx train` writes, and on the command line:

- the **options** of the command (`algorithm`, `env`, `torso`, `features`,
  `total_steps`, `seed`, `seeds`, ...), top-level keys of a TOML file (or an
  `[options]` table) and `--flags` on the command line;
- the **config**: fields of the algorithm's config class (`PPOConfig`, ...), a
  `[config]` table and `--set FIELD=VALUE`;
- the **optimizer** (`kind`, `learning_rate`, `max_grad_norm`, `eps`,
  `weight_decay`, `schedule`), an `[optimizer]` table and
  `--set optimizer.FIELD=VALUE`.

Command-line values win over the file's, which win over the defaults.
"""

import difflib
import json
import os
import tomllib
from typing import Any


ALGORITHMS = ("ppo", "dqn", "r2d2", "pqn", "sac", "sacd", "ippo", "mappo")
ALGORITHMS += ("stream_ac",)
MULTI_AGENT = ("ippo", "mappo")  # agents on a leading axis (the jaxmarl:: adapter)
ON_POLICY = ("ppo", "pqn", "ippo", "mappo", "stream_ac")  # no replay, no warm-up
NO_OPTIMIZER = ("stream_ac",)  # its step sizes are config fields (ObGD)
CONTINUOUS = ("sac",)  # algorithms for continuous actions only; ppo takes both kinds
DISCRETE = ("dqn", "r2d2", "pqn", "sacd")  # discrete actions only
LOGGERS = ("console", "dashboard", "wandb", "neptune")
LOGGER_PACKAGES = {"dashboard": "rich", "wandb": "wandb", "neptune": "neptune"}
TORSO_NAMES = (
    "delta_net",
    "dnc",
    "elman",
    "ffm",
    "gated_delta_net",
    "gru",
    "gtrxl",
    "indrnn",
    "linear_attention",
    "lru",
    "lstm",
    "mamba2",
    "mamba3",
    "mgu",
    "min_gru",
    "mlp",
    "mlstm",
    "moe_gru",
    "rtrl_lru",
    "rtu",
    "s5",
    "self_attention",
    "shm",
    "slstm",
    "xlstm",
)
"""The keys of `memrl_eqx.TORSOS`, known without importing JAX (a test keeps
them equal)."""

DEFAULT_ENV = "popgym::RepeatPreviousEasy"
DEFAULT_MULTI_AGENT_ENV = "jaxmarl::MPE_simple_spread_v3"
"""The environment of a multi-agent algorithm when none is given."""
DEFAULTS: dict[str, Any] = dict(
    algorithm="ppo",
    env=DEFAULT_ENV,
    torso="gru",
    features=64,
    total_steps=1_000_000,
    seed=0,
    seeds=1,
    warmup_steps=None,
    log_every=32_768,
    checkpoint_every=262_144,
    eval_every=None,
    eval_episodes=64,
    loggers=[],
)
"""The defaults of the options of `memrl-eqx train` (`warmup_steps` None: a
replay method's default warm-up, one batch of windows; `eval_every` None: no
periodic evaluation)."""

OPTIMIZER_FIELDS = ("kind", "learning_rate", "max_grad_norm", "eps", "weight_decay")
OPTIMIZER_FIELDS += ("schedule", "decay_steps")
OPTIMIZERS = ("adam", "adamw", "radam", "rmsprop", "sgd")
SCHEDULES = ("constant", "linear", "cosine")

_ADAM = dict(eps=1e-8, weight_decay=0.0, schedule="constant", decay_steps=None)
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": dict(kind="adam", learning_rate=3e-4, max_grad_norm=0.5, **_ADAM)
    | {"eps": 1e-5},
    "dqn": dict(kind="adam", learning_rate=3e-4, max_grad_norm=1.0, **_ADAM),
    "r2d2": dict(kind="adam", learning_rate=3e-4, max_grad_norm=1.0, **_ADAM),
    "pqn": dict(kind="radam", learning_rate=3e-4, max_grad_norm=10.0, **_ADAM),
    "sac": dict(kind="adam", learning_rate=3e-4, max_grad_norm=0.0, **_ADAM),
    "sacd": dict(kind="adam", learning_rate=3e-4, max_grad_norm=0.0, **_ADAM),
}
OPTIMIZER_DEFAULTS["ippo"] = OPTIMIZER_DEFAULTS["mappo"] = OPTIMIZER_DEFAULTS["ppo"]
OPTIMIZER_DEFAULTS["stream_ac"] = dict(kind="none")  # see NO_OPTIMIZER
"""The optimiser each algorithm trains with unless told otherwise
(`max_grad_norm` 0: no clipping). The config classes hold no optimiser, so
these are the command line's own choices (`docs/running.md` says why)."""

IDENTITY = (
    "algorithm",
    "env",
    "torso",
    "features",
    "seed",
    "seeds",
    "warmup_steps",
    "log_every",
    "eval_every",
)
"""The options that, with the config and the optimizer, define a run: its
checkpoint records them, and a resumed run must keep them."""

RESUMABLE = ("total_steps", "checkpoint_every", "eval_episodes", "loggers")
"""The options a resumed run may change."""


BENCH_DEFAULTS: dict[str, Any] = dict(
    torsos="gru,mlp",
    tasks="easy",
    seeds=3,
    total_steps=2_000_000,
    features=128,
    eval_episodes=32,
)
"""The defaults of `memrl-eqx bench popgym` and of `memrl_eqx.bench.popgym`."""

BENCH_CONFIG: dict[str, Any] = dict(gae_lambda=0.8)
"""The bench's PPO: `PPOConfig`'s defaults but `gae_lambda` (the preset
`examples/configs/ppo_popgym.toml`, whose comments say why)."""

BENCH_OPTIMIZER: dict[str, Any] = OPTIMIZER_DEFAULTS["ppo"] | {"learning_rate": 1e-3}
"""The bench's optimiser: PPO's with a learning rate of 1e-3 (the preset's)."""


class OptionError(ValueError):
    """A configuration that cannot be used; the message names the option."""


def _closest(name: Any, names) -> str:
    close = difflib.get_close_matches(str(name), list(names), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def parse_value(text: str) -> Any:
    """A command-line value as TOML reads it (`3`, `1e-4`, `true`, `"x"`,
    `[1, 2]`), or the text itself where it is not a TOML value (`adam`)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` of `--set` as `(FIELD, value)`."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise OptionError(f"--set {text!r}: expected FIELD=VALUE, e.g. gamma=0.95")
    return name, parse_value(value.strip())


def empty() -> dict[str, dict[str, Any]]:
    return {"options": {}, "config": {}, "optimizer": {}}


def read_file(
    path: str, known: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The options, config and optimizer of a TOML file or of a run's
    `config.json` (its `created` and `versions` are information only); the
    options must be names of `known` (default: those of `memrl-eqx train`)."""
    known = DEFAULTS if known is None else known
    if not os.path.isfile(path):
        raise OptionError(f"--config: {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            if path.endswith(".json"):
                data = json.load(f)
            else:
                data = tomllib.load(f)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise OptionError(f"--config: {path!r} is not valid TOML or JSON: {e}")
    if not isinstance(data, dict):
        raise OptionError(f"--config: {path!r} must hold a table of options")
    out = empty()
    for key, value in data.items():
        if key in ("config", "optimizer", "options"):
            if not isinstance(value, dict):
                raise OptionError(f"--config: {path}: [{key}] must be a table")
            out[key].update(value)
        elif key in ("created", "versions", "command"):
            continue
        else:
            out["options"][key] = value
    for name in out["options"]:
        if name not in known:
            raise OptionError(
                f"--config: {path}: unknown option {name!r}"
                f"{_closest(name, known)}; the options are "
                f"{', '.join(known)}, and the tables [config] and [optimizer]"
            )
    return out


def merge(*parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later parts win, key by key."""
    out = empty()
    for part in parts:
        for section, values in part.items():
            out[section].update(values)
    return out


def check_options(options: dict[str, Any]) -> None:
    """Types and ranges of the options, before anything is imported or made."""

    def positive(name, value):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise OptionError(f"{name}: expected a positive integer, got {value!r}")

    for name in ("features", "total_steps", "seeds", "log_every", "checkpoint_every"):
        positive(name, options[name])
    positive("eval_episodes", options["eval_episodes"])
    for name in ("warmup_steps", "eval_every"):
        if options[name] is not None:
            positive(name, options[name])
    if isinstance(options["seed"], bool) or not isinstance(options["seed"], int):
        raise OptionError(f"seed: expected an integer, got {options['seed']!r}")
    if options["algorithm"] not in ALGORITHMS:
        raise OptionError(
            f"algorithm: {options['algorithm']!r} is not one of "
            f"{', '.join(map(repr, ALGORITHMS))}"
        )
    if options["torso"] not in TORSO_NAMES:
        raise OptionError(
            f"torso: unknown torso {options['torso']!r}"
            f"{_closest(options['torso'], TORSO_NAMES)}; choose from "
            f"{', '.join(map(repr, TORSO_NAMES))}"
        )
    if not isinstance(options["env"], str) or "::" not in options["env"]:
        raise OptionError(
            f"env: expected an id 'namespace::name', got {options['env']!r} "
            "(`memrl-eqx envs` lists them)"
        )
    loggers = options["loggers"]
    if isinstance(loggers, str):
        loggers = options["loggers"] = [n.strip() for n in loggers.split(",") if n]
    check_loggers(loggers)


def check_loggers(names: list[str]) -> None:
    import importlib.util

    for name in names:
        if name not in LOGGERS:
            raise OptionError(
                f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}"
            )
        package = LOGGER_PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise OptionError(
                f"the {name} logger needs {package}, which is not installed: "
                f"pip install 'memrl_eqx[{name}]'"
            )


def resolve_optimizer(algorithm: str, given: dict[str, Any]) -> dict[str, Any]:
    """The algorithm's default optimiser with the `given` fields, checked
    (`decay_steps` stays None until the run's length is known)."""
    if algorithm in NO_OPTIMIZER:
        for name in given:
            raise OptionError(
                f"optimizer.{name}: {algorithm} has no optimiser; its step sizes "
                f"are fields of {CONFIG_CLASSES[algorithm]} (e.g. --set actor_lr=0.5)"
            )
        return dict(OPTIMIZER_DEFAULTS[algorithm])
    for name in given:
        if name not in OPTIMIZER_FIELDS:
            raise OptionError(
                f"optimizer.{name}: unknown optimizer field"
                f"{_closest(name, OPTIMIZER_FIELDS)}; the fields are "
                f"{', '.join(OPTIMIZER_FIELDS)}"
            )
    spec = {**OPTIMIZER_DEFAULTS[algorithm], **given}
    for name, choices in (("kind", OPTIMIZERS), ("schedule", SCHEDULES)):
        if spec[name] not in choices:
            raise OptionError(
                f"optimizer.{name}: {spec[name]!r} is not one of {', '.join(choices)}"
            )
    for name in ("learning_rate", "max_grad_norm", "eps", "weight_decay"):
        value = spec[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"optimizer.{name}: expected a number, got {value!r}")
        spec[name] = float(value)
        strict = name in ("learning_rate", "eps")
        if value < 0 or (strict and value == 0):
            kind = "positive" if strict else "non-negative"
            raise OptionError(
                f"optimizer.{name}: expected a {kind} number, got {value!r}"
            )
    if spec["weight_decay"] and spec["kind"] != "adamw":
        raise OptionError(
            f"optimizer.weight_decay: only kind 'adamw' takes weight decay "
            f"(kind is {spec['kind']!r})"
        )
    decay = spec["decay_steps"]
    if decay is not None and (
        isinstance(decay, bool) or not isinstance(decay, int) or decay <= 0
    ):
        raise OptionError(
            f"optimizer.decay_steps: expected a positive integer, got {decay!r}"
        )
    return spec


def _fields(text: str) -> dict[str, str]:
    return dict(item.split(":") for item in text.split())


_REPLAY = (
    "num_envs:int rollout_length:int gradient_steps:int buffer_capacity:int "
    "batch_size:int sequence_length:int burn_in_length:int"
)
_DQN = _fields(
    f"{_REPLAY} n_step:int target_update_period:int sampling:str prioritised:bool "
    "double:bool value_rescaling:bool gamma:float tau:float epsilon_start:float "
    "epsilon_end:float epsilon_decay_steps:float priority_exponent:float "
    "importance_exponent:float priority_eta:float rescaling_epsilon:float"
)
_SAC = _fields(
    f"{_REPLAY} sampling:str target_update_period:int gamma:float tau:float "
    "target_entropy_scale:float initial_alpha:float"
)
CONFIG_CLASSES = {
    "ppo": "PPOConfig",
    "dqn": "DQNConfig",
    "r2d2": "DQNConfig.r2d2()",
    "pqn": "PQNConfig",
    "sac": "SACConfig",
    "sacd": "SACDConfig",
    "ippo": "IPPOConfig",
    "mappo": "MAPPOConfig",
    "stream_ac": "StreamACConfig",
}
"""The config class (or preset) each algorithm is configured by."""

CONFIG_FIELDS: dict[str, dict[str, str]] = {
    "ppo": _fields(
        "num_envs:int num_steps:int num_minibatches:int update_epochs:int "
        "gamma:float gae_lambda:float clip_coefficient:float "
        "entropy_coefficient:float value_coefficient:float normalize_advantage:bool "
        "clip_value_loss:bool reward_scale:float clip_actions:bool burn_in_length:int"
    ),
    "dqn": _DQN,
    "r2d2": _DQN,
    "pqn": _fields(
        "num_envs:int num_steps:int num_minibatches:int update_epochs:int "
        "gamma:float td_lambda:float epsilon_start:float epsilon_end:float "
        "epsilon_decay_steps:float reward_scale:float"
    ),
    "sac": _SAC,
    "sacd": _SAC,
}
CONFIG_FIELDS["stream_ac"] = _fields(
    "num_envs:int num_steps:int gamma:float trace_lambda:float actor_lr:float "
    "critic_lr:float actor_kappa:float critic_kappa:float entropy_coefficient:float "
    "normalize_observations:bool scale_rewards:bool epsilon:float clip_actions:bool"
)
CONFIG_FIELDS["ippo"] = CONFIG_FIELDS["mappo"] = {
    **CONFIG_FIELDS["ppo"],
    "share_parameters": "bool",
}
"""The fields of each algorithm's config class and the kind of value each takes,
known without importing JAX (a test keeps them equal to the classes')."""


def coerce_config(algorithm: str, given: dict[str, Any]) -> dict[str, Any]:
    """The `given` config fields, named and typed as the algorithm's config class
    has them (an integer for a float field becomes a float; `1e4` for an integer
    field becomes 10000). Ranges are left to the config class."""
    fields, cls = CONFIG_FIELDS[algorithm], CONFIG_CLASSES[algorithm]
    out = {}
    for name, value in given.items():
        if name not in fields:
            raise OptionError(
                f"{name}: {cls} has no field {name!r}{_closest(name, fields)}"
            )
        kind = fields[name]
        ok = not isinstance(value, bool) or kind == "bool"
        if kind == "int" and ok and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif kind == "float" and ok and isinstance(value, int):
            value = float(value)
        types = {"int": int, "float": float, "bool": bool, "str": str}
        if not (ok and isinstance(value, types[kind])):
            article = "an" if kind == "int" else "a"
            raise OptionError(
                f"{name}: {cls}.{name} takes {article} {kind}, got {value!r}"
            )
        out[name] = value
    return out
