"""Environments: `make("namespace::name")`, wrappers, and the POPGym memory suite."""

from . import adapters as adapters, popgym as popgym
from ._action import ClipAction as ClipAction, RescaleAction as RescaleAction
from ._episode_statistics import (
    EpisodeStatistics as EpisodeStatistics,
    EpisodeStatisticsState as EpisodeStatisticsState,
)
from ._make import list_envs as list_envs, make as make
from ._normalize import (
    NormalizeObservation as NormalizeObservation,
    NormalizeObservationState as NormalizeObservationState,
    NormalizeReward as NormalizeReward,
    NormalizeRewardState as NormalizeRewardState,
    RunningStatistics as RunningStatistics,
)
from ._observation import (
    FlattenObservation as FlattenObservation,
    FlickerObservation as FlickerObservation,
    MaskObservation as MaskObservation,
    ObservePreviousActionReward as ObservePreviousActionReward,
    ObservePreviousActionRewardState as ObservePreviousActionRewardState,
)
from ._wrapper import (
    AbstractActionWrapper as AbstractActionWrapper,
    AbstractObservationWrapper as AbstractObservationWrapper,
    AbstractWrapper as AbstractWrapper,
)
