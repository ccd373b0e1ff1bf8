"""The algorithm pages cannot drift from the code.

Each page of docs/algorithms/ documents its config in one table whose header is
`| field | default | meaning |`: a row per field, the field's name and its
default in backticks, the default written as a Python literal. These tests
parse that table and compare it with the config class's dataclass fields, so
adding, removing or renaming a field, or changing a default (its value or its
type: `10_000.0` is not `10_000`), fails here until the page follows. DQN's
page also lists what its presets `DQNConfig.drqn()` and `DQNConfig.r2d2()`
change, checked the same way.
"""

import ast
import dataclasses
import pathlib
import re
from typing import Any

import pytest

from memrl_eqx.algorithms import (
    DQNConfig,
    PPOConfig,
    PQNConfig,
    SACConfig,
    SACDConfig,
)


DOCS = pathlib.Path(__file__).parents[1] / "docs"
PAGES = {
    "ppo": PPOConfig,
    "dqn": DQNConfig,
    "pqn": PQNConfig,
    "sac": SACConfig,
    "sacd": SACDConfig,
}
CONFIG_HEADER = ["field", "default", "meaning"]
PRESET_HEADER = ["field", "`DQNConfig.drqn()`", "`DQNConfig.r2d2()`"]


def _page(name: str) -> str:
    return (DOCS / "algorithms" / f"{name}.md").read_text()


def _cells(line: str) -> list[str]:
    """The cells of one table row (pipes escaped as `\\|` stay in the cell)."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


def _tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of `text`, as rows of cells (the `---` rule left
    out), outside code blocks."""
    tables, rows, fenced = [], [], False
    for line in text.splitlines() + [""]:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            cells = _cells(line)
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _table(text: str, header: list[str]) -> list[list[str]]:
    """The body of the one table of `text` with this header."""
    found = [t for t in _tables(text) if t[0] == header]
    assert len(found) == 1, f"expected one table headed {header}, found {len(found)}"
    return found[0][1:]


def _literal(cell: str) -> Any:
    """The Python value of a cell holding one literal in backticks."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected a literal in backticks, got {cell!r}"
    return ast.literal_eval(match.group(1))


def _field_name(cell: str) -> str:
    match = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell)
    assert match, f"expected a field name in backticks, got {cell!r}"
    return match.group(1)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _code_defaults(cls: type) -> dict[str, Any]:
    defaults = {}
    for field in dataclasses.fields(cls):
        assert field.default is not dataclasses.MISSING, (
            f"{cls.__name__}.{field.name} has no plain default"
        )
        defaults[field.name] = field.default
    return defaults


def config_table_problems(text: str, cls: type) -> list[str]:
    """How the config table of a page differs from `cls` (empty if it does not)."""
    rows = _table(text, CONFIG_HEADER)
    documented: dict[str, Any] = {}
    problems = []
    for row in rows:
        assert len(row) == 3, f"a row of {len(row)} cells: {row}"
        name = _field_name(row[0])
        if name in documented:
            problems.append(f"`{name}` is listed twice")
        documented[name] = _literal(row[1])
        if not row[2]:
            problems.append(f"`{name}` has no meaning")
    expected = _code_defaults(cls)
    for name in expected.keys() - documented.keys():
        problems.append(f"`{name}` is a field of {cls.__name__} but not in the table")
    for name in documented.keys() - expected.keys():
        problems.append(f"`{name}` is in the table but not a field of {cls.__name__}")
    for name in documented.keys() & expected.keys():
        if not _same(documented[name], expected[name]):
            problems.append(
                f"`{name}`: the table says {documented[name]!r}, the code "
                f"{expected[name]!r}"
            )
    return problems


@pytest.mark.parametrize("name", PAGES)
def test_config_table_lists_every_field_with_its_default(name):
    assert config_table_problems(_page(name), PAGES[name]) == []


def test_dqn_preset_table_matches_the_presets():
    rows = _table(_page("dqn"), PRESET_HEADER)
    columns = {"drqn": {}, "r2d2": {}}
    for row in rows:
        name = _field_name(row[0])
        for preset, cell in zip(columns, row[1:]):
            if cell not in ("", "–", "-"):
                columns[preset][name] = _literal(cell)
    base = DQNConfig()
    for preset, documented in columns.items():
        config = getattr(DQNConfig, preset)()
        changed = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(DQNConfig)
            if not _same(getattr(config, f.name), getattr(base, f.name))
        }
        assert documented.keys() == changed.keys(), preset
        for name, value in changed.items():
            assert _same(documented[name], value), (preset, name)


def test_drift_is_caught():
    """The check is real: a changed default, a missing row and an unknown field
    are each reported."""
    text = _page("ppo")
    assert config_table_problems(text, PPOConfig) == []
    row = next(line for line in text.splitlines() if line.startswith("| `num_envs`"))
    assert "`32`" in row
    changed = text.replace(row, row.replace("`32`", "`33`"))
    assert any("num_envs" in p for p in config_table_problems(changed, PPOConfig))
    missing = text.replace(row + "\n", "")
    assert any("num_envs" in p for p in config_table_problems(missing, PPOConfig))
    extra = text.replace(row, row + "\n| `num_agents` | `2` | made up |")
    assert any("num_agents" in p for p in config_table_problems(extra, PPOConfig))
    # A float default written as an integer is a different default.
    row = next(line for line in text.splitlines() if line.startswith("| `gamma`"))
    retyped = text.replace(row, row.replace("`0.99`", "`1`"))
    assert any("gamma" in p for p in config_table_problems(retyped, PPOConfig))
    # The same table checked against another config fails.
    assert config_table_problems(text, PQNConfig)


@pytest.mark.parametrize("name", PAGES)
def test_page_shows_its_learning_curve_and_a_recurrent_example(name):
    text = _page(name)
    assert f"](../assets/curves/{name}.png)" in text
    assert (DOCS / "assets" / "curves" / f"{name}.png").is_file()
    assert "python benchmarks/learning_curves.py --algorithms " + name in text
    assert re.search(r"^```python\n", text, flags=re.M)
