"""Benchmarks as functions: the POPGym benchmark (`popgym`), its score (`mmer`)
and POPGym's published figures (`PUBLISHED`, `published_mmer`)."""

from ._mmer import mmer as mmer
from ._popgym import BenchError as BenchError, popgym as popgym
from ._published import (
    BUDGET as BUDGET,
    CITATION as CITATION,
    PUBLISHED as PUBLISHED,
    published_mmer as published_mmer,
    PublishedMMER as PublishedMMER,
    SOURCE as SOURCE,
)
