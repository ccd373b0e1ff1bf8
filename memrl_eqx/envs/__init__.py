"""Environments: `make("namespace::name")`, wrappers, and the POPGym memory suite."""

from . import adapters as adapters, popgym as popgym
from ._action import ClipAction as ClipAction, RescaleAction as RescaleAction
from ._bsuite import (
    BSuiteRegret as BSuiteRegret,
    BSuiteRegretState as BSuiteRegretState,
)
from ._delay import (
    DelayObservation as DelayObservation,
    DelayObservationState as DelayObservationState,
)
from ._episode_statistics import (
    EpisodeStatistics as EpisodeStatistics,
    EpisodeStatisticsState as EpisodeStatisticsState,
)
from ._make import list_envs as list_envs, make as make
from ._noisy import NoisyObservation as NoisyObservation
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
from ._periodic import (
    PeriodicObservation as PeriodicObservation,
    PeriodicObservationState as PeriodicObservationState,
)
from ._scale_reward import ScaleReward as ScaleReward
from ._sticky import (
    StickyAction as StickyAction,
    StickyActionState as StickyActionState,
)
from ._wrapper import (
    AbstractActionWrapper as AbstractActionWrapper,
    AbstractObservationWrapper as AbstractObservationWrapper,
    AbstractWrapper as AbstractWrapper,
)
