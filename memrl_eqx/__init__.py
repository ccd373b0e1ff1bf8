"""memrl_eqx: memory-augmented reinforcement learning in JAX, the Equinox way.

The subpackages and names below are imported on first use (PEP 562), so that
`import memrl_eqx.cli` (the `memrl-eqx` command) answers `--help` without
importing JAX.
"""

import importlib
import importlib.metadata
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from . import (
        algorithms as algorithms,
        bench as bench,
        buffers as buffers,
        envs as envs,
        nn as nn,
    )
    from ._agents import (
        actor_critic as actor_critic,
        make_torso as make_torso,
        network as network,
        q_network as q_network,
        sac_networks as sac_networks,
        TORSOS as TORSOS,
    )
    from ._checkpoint import (
        load_checkpoint as load_checkpoint,
        read_checkpoint_metadata as read_checkpoint_metadata,
        save_checkpoint as save_checkpoint,
    )
    from ._sharding import shard as shard
    from ._stack import stack as stack


_SUBPACKAGES = ("algorithms", "bench", "buffers", "envs", "nn")
_NAMES = {
    "actor_critic": "._agents",
    "make_torso": "._agents",
    "network": "._agents",
    "q_network": "._agents",
    "sac_networks": "._agents",
    "TORSOS": "._agents",
    "load_checkpoint": "._checkpoint",
    "read_checkpoint_metadata": "._checkpoint",
    "save_checkpoint": "._checkpoint",
    "shard": "._sharding",
    "stack": "._stack",
}

__all__ = sorted(_SUBPACKAGES + tuple(_NAMES))


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f".{name}", __name__)
    elif name in _NAMES:
        module = getattr(importlib.import_module(_NAMES[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = module  # later lookups skip this function
    return module


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = importlib.metadata.version("memrl_eqx")
