"""Every sequence model in the package, built small, for the shared contract tests.

Each model family lists its models in a `tests/nn/zoo_<family>.py` file as a dict
`MODELS = {name: factory(key) -> sequence model}` with `in_features=IN` and
`features=OUT`; this module merges them, so a new model joins every contract test
by adding one line to its family's zoo.
"""

import importlib
import pathlib

import jax

import memrl_eqx.nn as mnn

from .zoo_core import IN as IN, OUT as OUT


SEQUENCE_MODELS = {}
for _path in sorted(pathlib.Path(__file__).parent.glob("zoo_*.py")):
    _module = importlib.import_module(f"{__package__}.{_path.stem}")
    _duplicates = SEQUENCE_MODELS.keys() & _module.MODELS.keys()
    assert not _duplicates, f"{_path.name} redefines {_duplicates}"
    SEQUENCE_MODELS.update(_module.MODELS)

MEMOROID_MODELS = {
    name: make
    for name, make in SEQUENCE_MODELS.items()
    if isinstance(make(jax.random.key(0)), mnn.Memoroid)
}
