"""The documentation site builds with `mkdocs build --strict`: every page of the
nav exists, every link and cross-reference resolves, and the API reference is
generated from the docstrings of each public package."""

import os
import pathlib
import re
import subprocess
import sys

import pytest


ROOT = pathlib.Path(__file__).parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_site_builds_strict(site):
    assert (site / "index.html").is_file()


@pytest.mark.parametrize(
    "page, names",
    [
        ("api/nn", ["GRUCell", "Memoroid", "RNN", "GTrXL", "Network"]),
        ("api/algorithms", ["PPOConfig", "DQN", "PQN", "SAC", "gae"]),
        ("api/envs", ["make", "RepeatPrevious", "BraxAdapter"]),
        ("api/memrl_eqx", ["actor_critic", "save_checkpoint", "shard"]),
        ("api/bench", ["popgym", "mmer", "published_mmer", "PUBLISHED"]),
    ],
)
def test_api_reference_documents_the_public_names(site, page, names):
    html = (site / page / "index.html").read_text()
    for name in names:
        assert re.search(rf'id="memrl_eqx(\.\w+)*\.{name}"', html), name
