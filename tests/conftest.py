import random

import equinox as eqx
import jax
import jax.random as jr
import pytest

from .helpers import fast_compile


# Strict numerics, as equinox's own suite: no silent dtype or rank promotion.
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


class GetKey:
    """A seeded key factory: each call gives a fresh key; the seed is in the repr
    so a failure can be reproduced."""

    def __init__(self, seed: int):
        self.seed = seed
        self.count = 0

    def __call__(self):
        self.count += 1
        return jr.fold_in(jr.key(self.seed), self.count)

    def __repr__(self):
        return f"GetKey(seed={self.seed})"


@pytest.fixture
def getkey():
    return GetKey(random.randint(0, 2**31 - 1))


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop compiled programs after each test module. A worker runs hundreds of
    modules' worth of models; keeping every executable grew workers to ~5 GB and
    ended in a crash inside XLA's compiler late in a run."""
    yield
    eqx.clear_caches()
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _compile_fast_unless_learning(request):
    """Tests run small programs a few times, so XLA's optimisations cost far more
    than they save: compile them fast (`helpers.fast_compile`; a PPO update
    compiles in 1.6 s instead of 7.4 s). Learning tests run their programs for
    minutes and keep the defaults."""
    if request.node.get_closest_marker("learning") is not None:
        yield
        return
    with fast_compile():
        yield
