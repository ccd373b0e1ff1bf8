"""Every Python code block in README.md and docs/*.md runs as written.

Blocks of one page run in order in one namespace (a page is one program), so a
later block may use names an earlier one defined. A page's blocks that show the
contract in the abstract can opt out by starting with the line `# not run`.
"""

import pathlib
import re

import jax
import pytest


ROOT = pathlib.Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _programs(page: pathlib.Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    return [b for b in blocks if not b.startswith("# not run")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page):
    programs = _programs(page)
    namespace: dict = {}
    # Pages show user code, which runs under JAX's default promotion rules.
    with jax.numpy_dtype_promotion("standard"):
        for i, program in enumerate(programs):
            exec(compile(program, f"{page.name}[block {i}]", "exec"), namespace)


def test_readme_has_runnable_examples():
    assert len(_programs(ROOT / "README.md")) >= 2
