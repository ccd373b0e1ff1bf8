"""Every Python code block of the README runs as written."""

import pathlib
import re

import jax
import pytest


README = pathlib.Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
# Blocks that show the contract in the abstract (free names) are not programs.
PROGRAMS = [b for b in BLOCKS if "import" in b]


def test_readme_has_examples():
    assert len(PROGRAMS) >= 2


@pytest.mark.parametrize("index", range(len(PROGRAMS)))
def test_readme_block_runs(index):
    # The README shows user code, which runs under JAX's default promotion rules.
    with jax.numpy_dtype_promotion("standard"):
        exec(compile(PROGRAMS[index], f"README.md[block {index}]", "exec"), {})
