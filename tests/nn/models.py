"""Every sequence model in the package, built small, for the shared contract tests.

Each model family lists its models in a `tests/nn/zoo_<family>.py` file as a dict
`MODELS = {name: factory(key) -> sequence model}` with `in_features=IN` and
`features=OUT`; this module merges them, so a new model joins every contract test
by adding one line to its family's zoo.
"""

import importlib
import pathlib

import equinox as eqx
import jax

import memrl_eqx.nn as mnn

from .zoo_core import IN as IN, OUT as OUT


SEQUENCE_MODELS = {}
for _path in sorted(pathlib.Path(__file__).parent.glob("zoo_*.py")):
    _module = importlib.import_module(f"{__package__}.{_path.stem}")
    _duplicates = SEQUENCE_MODELS.keys() & _module.MODELS.keys()
    assert not _duplicates, f"{_path.name} redefines {_duplicates}"
    SEQUENCE_MODELS.update(_module.MODELS)


def _is_memoroid(make) -> bool:
    """Whether `make` builds a `Memoroid`. Decided on an abstract build where the
    constructor can be traced: this runs at collection, in every xdist worker, and
    building every model concretely compiled ~250 small programs there (80 s)."""
    try:
        model = eqx.filter_eval_shape(make, jax.random.key(0))
    except jax.errors.JAXTypeError:  # a constructor that needs concrete values
        model = make(jax.random.key(0))
    return isinstance(model, mnn.Memoroid)


MEMOROID_MODELS = {
    name: make for name, make in SEQUENCE_MODELS.items() if _is_memoroid(make)
}
