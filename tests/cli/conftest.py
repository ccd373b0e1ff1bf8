import pytest

from . import _runs


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """A complete run of 4 updates (checkpointed after the 2nd and the 4th)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    with _runs.O0():
        assert _runs.train(run, 2048) == 0
    return run
