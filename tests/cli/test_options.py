"""The command line's configuration: tables known without JAX agree with the
library, values are typed as the config classes have them, and the optimiser a
spec describes is the one optax builds by hand."""

import dataclasses
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax
import pytest

import memrl_eqx
import memrl_eqx.algorithms
from memrl_eqx.algorithms import (
    DQNConfig,
    IPPOConfig,
    MAPPOConfig,
    PPOConfig,
    PQNConfig,
    SACConfig,
    SACDConfig,
    StreamACConfig,
)
from memrl_eqx.cli import _options as O
from memrl_eqx.cli._build import config_class, make_config, make_optimizer


def _kind(annotation) -> str:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    for kind in ("bool", "int", "str"):
        if text in (kind, f"<class '{kind}'>"):
            return kind
    return "str" if "Literal" in text else "float"


def test_the_torso_names_are_the_registry_of_torsos():
    assert list(O.TORSO_NAMES) == sorted(memrl_eqx.TORSOS)


@pytest.mark.parametrize("algorithm", O.ALGORITHMS)
def test_the_config_fields_are_the_config_classes(algorithm):
    cls = {
        "ppo": PPOConfig,
        "dqn": DQNConfig,
        "r2d2": DQNConfig,
        "pqn": PQNConfig,
        "sac": SACConfig,
        "sacd": SACDConfig,
        "ippo": IPPOConfig,
        "mappo": MAPPOConfig,
        "stream_ac": StreamACConfig,
    }[algorithm]
    fields = {f.name: _kind(f.type) for f in dataclasses.fields(cls)}
    assert O.CONFIG_FIELDS[algorithm] == fields
    name = O.CONFIG_CLASSES[algorithm].split(".")[0]  # DQNConfig.r2d2() too
    assert getattr(memrl_eqx.algorithms, name) is cls


@pytest.mark.parametrize("algorithm", O.ALGORITHMS)
def test_no_fields_given_are_the_config_classes_defaults(algorithm):
    """The command line's defaults are the config classes' (DQN's n_step is 1,
    R2D2 is the preset)."""
    config, values = make_config(algorithm, {})
    expected = config_class(algorithm)()
    assert config == expected
    assert values == {
        f.name: getattr(expected, f.name) for f in dataclasses.fields(expected)
    }
    # The resolved fields build the same config again (config.json reproduces).
    assert make_config(algorithm, values)[0] == expected


def test_values_are_typed_as_the_fields_are():
    given = {"gamma": 1, "num_steps": 2e2, "normalize_advantage": False}
    assert O.coerce_config("ppo", given) == {
        "gamma": 1.0,
        "num_steps": 200,
        "normalize_advantage": False,
    }
    assert type(O.coerce_config("ppo", given)["gamma"]) is float
    with pytest.raises(O.OptionError, match="PPOConfig.normalize_advantage takes a"):
        O.coerce_config("ppo", {"normalize_advantage": 1})
    with pytest.raises(O.OptionError, match="PPOConfig.num_envs takes an int"):
        O.coerce_config("ppo", {"num_envs": True})
    with pytest.raises(O.OptionError, match="did you mean epsilon_decay_steps"):
        O.coerce_config("dqn", {"epsilon_decay": 3})


@pytest.mark.parametrize(
    "text, value",
    [("3", 3), ("1e-4", 1e-4), ("true", True), ('"tape"', "tape"), ("tape", "tape")],
)
def test_command_line_values_read_as_toml(text, value):
    assert O.parse_assignment(f"field={text}") == ("field", value)


def _updates(optimizer, steps=3):
    with jax.numpy_dtype_promotion("standard"):  # as the algorithms run optax
        return _run_updates(optimizer, steps)


def _run_updates(optimizer, steps):
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = {"w": jnp.array([10.0, 0.5, -4.0])}
    state = optimizer.init(params)
    out = []
    for _ in range(steps):
        update, state = optimizer.update(grads, state, params)
        out.append(update["w"])
    return jnp.stack(out)


@pytest.mark.parametrize(
    "algorithm, given, by_hand",
    [
        (
            "ppo",
            {},
            optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-4, eps=1e-5)),
        ),
        ("pqn", {}, optax.chain(optax.clip_by_global_norm(10.0), optax.radam(3e-4))),
        ("sac", {}, optax.adam(3e-4)),
        (
            "dqn",
            {"kind": "adamw", "weight_decay": 0.1, "learning_rate": 1e-3},
            optax.chain(
                optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=0.1)
            ),
        ),
        (
            "ppo",
            {"schedule": "linear", "decay_steps": 2, "max_grad_norm": 0},
            optax.adam(optax.linear_schedule(3e-4, 0.0, 2), eps=1e-5),
        ),
    ],
)
def test_the_optimiser_of_a_spec(algorithm, given, by_hand):
    spec = O.resolve_optimizer(algorithm, given)
    assert jnp.allclose(_updates(make_optimizer(spec)), _updates(by_hand))


def test_a_linear_schedule_decays_to_zero():
    spec = O.resolve_optimizer("sac", {"schedule": "linear", "decay_steps": 2})
    assert jnp.all(_updates(make_optimizer(spec), steps=4)[2:] == 0)


def test_parsing_the_command_line_does_not_import_jax():
    code = (
        "import sys\n"
        "from memrl_eqx.cli import main\n"
        "try:\n"
        "    main(['train', '--set', 'gama=1'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 2\n"
        "try:\n"
        "    main(['train', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        "assert 'jax' not in sys.modules, 'jax was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "PPOConfig has no field 'gama' (did you mean gamma" in result.stderr


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("torso", 5, "torso: unknown torso 5"),
        ("seed", 1.5, "seed: expected an integer, got 1.5"),
        ("total_steps", "many", "total_steps: expected a positive integer"),
        ("env", 3, "env: expected an id 'namespace::name', got 3"),
    ],
)
def test_a_file_option_of_the_wrong_type_is_named(option, value, message):
    with pytest.raises(O.OptionError, match=re.escape(message)):
        O.check_options({**O.DEFAULTS, option: value})
