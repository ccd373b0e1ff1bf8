"""Every Python code block in README.md and docs/**/*.md runs as written.

Blocks of one page run in order in one namespace (a page is one program), so a
later block may use names an earlier one defined. Blocks nested in a tab or an
admonition are dedented first. Two kinds of block are only compiled, never run:
those starting with `# not run` (the contract in the abstract) and those starting
with `# Flax original` (the migration guide's left-hand side, code of a library
that is not a dependency).
"""

import pathlib

import pytest

from .helpers import python_blocks, run_program


ROOT = pathlib.Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_SKIP = ("# not run", "# Flax original")


def _blocks(page: pathlib.Path) -> list[str]:
    return python_blocks(page.read_text())


def _programs(page: pathlib.Path) -> list[str]:
    return [b for b in _blocks(page) if not b.startswith(_SKIP)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page):
    for i, block in enumerate(_blocks(page)):
        compile(block, f"{page.name}[block {i}]", "exec")  # every block parses
    namespace: dict = {}
    for i, program in enumerate(_programs(page)):
        run_program(program, f"{page.name}[block {i}]", namespace)


def test_readme_has_runnable_examples():
    assert len(_programs(ROOT / "README.md")) >= 2


def test_blocks_are_found_inside_tabs(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        '=== "A"\n\n    ```python\n    x = 1\n    if x:\n        y = 2\n    ```\n\n'
        "```python\n# not run\nz\n```\n"
    )
    assert _blocks(page) == ["x = 1\nif x:\n    y = 2\n", "# not run\nz\n"]
    assert _programs(page) == ["x = 1\nif x:\n    y = 2\n"]
