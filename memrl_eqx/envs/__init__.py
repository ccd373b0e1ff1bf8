"""Environments: `make("namespace::name")`, wrappers, and the POPGym memory suite."""

from . import popgym as popgym
from ._make import list_envs as list_envs, make as make
from ._wrappers import (
    EpisodeStatistics as EpisodeStatistics,
    EpisodeStatisticsState as EpisodeStatisticsState,
)
