"""Replay buffers: flashbax storage, sampled as sequences."""

from ._sequence_replay import (
    ReplaySample as ReplaySample,
    ReplayState as ReplayState,
    SequenceReplay as SequenceReplay,
)
