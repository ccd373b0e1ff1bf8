"""`Network`: feature extractor, torso and head, as one sequence model."""

from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._feature_extractor import FeatureExtractor
from ._sequence_model import AbstractSequenceModel
from ._timestep import Timestep


class Network(eqx.Module):
    """An agent's network: `carry, out = network(carry, timestep)`.

    `timestep` is a `Timestep` of sequences (leading axis time). The feature
    extractor embeds every step, the torso (any sequence model) runs over the
    sequence, resetting its carry where `timestep.reset` is set, and the head maps
    the torso's outputs to the result: a distrax distribution over the sequence
    for a policy head, an array `(time, ...)` for a value or Q head.

    A feed-forward agent is a network whose torso is a `SequenceModelWrapper`
    (its carry is `()`).
    """

    feature_extractor: FeatureExtractor
    torso: AbstractSequenceModel
    head: eqx.Module

    def init_carry(self) -> Carry:
        """The torso's carry at the start of an episode."""
        return self.torso.init_carry()

    def __call__(
        self, carry: Carry, timestep: Timestep, *head_args: Any, **head_kwargs: Any
    ) -> tuple[Carry, Any]:
        """Run the network over one sequence of timesteps.

        Extra arguments go to the head: `critic(carry, timestep, actions)` for a
        Q(s, a) head, `actor(carry, timestep, temperature=0.0)` for a
        `SquashedGaussian`.
        """
        carry, hidden = self.encode(carry, timestep)
        return carry, self.head(hidden, *head_args, **head_kwargs)

    def encode(
        self, carry: Carry, timestep: Timestep
    ) -> tuple[Carry, Float[Array, "time features"]]:
        """Run the feature extractor and the torso, not the head: `(carry, hidden)`.

        For burn-in (only the carry is needed) and for evaluating one head on
        several inputs, e.g. a Q(s, a) head on two sets of actions, with one pass
        of the torso.
        """
        reset: Bool[Array, " time"] = timestep.reset
        features = jax.vmap(self.feature_extractor)(timestep)
        return self.torso(carry, features, reset)
