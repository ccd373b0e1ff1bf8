import pytest

from ..helpers import fast_compile
from . import _runs


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """A complete run of 4 updates (checkpointed after the 2nd and the 4th)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    with fast_compile():  # session fixtures precede the per-test one
        assert _runs.train(run, 2048) == 0
    return run
