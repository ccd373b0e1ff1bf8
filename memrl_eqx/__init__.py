"""memrl_eqx: memory-augmented reinforcement learning in JAX, the Equinox way."""

import importlib.metadata

from . import algorithms as algorithms, buffers as buffers, envs as envs, nn as nn
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


__version__ = importlib.metadata.version("memrl_eqx")
