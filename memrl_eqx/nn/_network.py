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

    [`memrl_eqx.network`][], [`memrl_eqx.actor_critic`][] and
    [`memrl_eqx.q_network`][] build networks for an environment by torso name.

    **Arguments:**

    - `feature_extractor`: a [`memrl_eqx.nn.FeatureExtractor`][], mapping one
      step's `Timestep` to a feature vector of size `in_features` of the torso.
    - `torso`: a sequence model ([`memrl_eqx.nn.AbstractSequenceModel`][]) from
      `(time, in_features)` to `(time, features)`.
    - `head`: a module mapping the torso's outputs `(time, features)` to the
      result, e.g. one of [`memrl_eqx.nn.heads`][]; extra arguments of a call go
      to it.

    **Example:** an actor that sees the observation and its previous action.

    ```python
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    from memrl_eqx.nn import (
        FeatureExtractor, GRUCell, heads, Linear, Network, OneHot, RNN, Timestep
    )

    k1, k2, k3 = jr.split(jr.key(0), 3)
    actor = Network(
        feature_extractor=FeatureExtractor(
            observation_extractor=Linear(4, 14, key=k1),  # obs (4,) -> (14,)
            action_extractor=OneHot(2),  # previous action -> (2,)
        ),
        torso=RNN(GRUCell(in_features=14 + 2, features=32, key=k2)),
        head=heads.Categorical(in_features=32, action_dim=2, key=k3),
    )
    timestep = Timestep(
        obs=jnp.ones((5, 4)),  # 5 steps of one episode
        prev_action=jnp.array([0, 1, 1, 0, 1]),
        prev_reward=jnp.zeros(5),
        reset=jnp.arange(5) == 0,
    )
    carry, policy = actor(actor.init_carry(), timestep)
    assert policy.logits.shape == (5, 2) and carry.shape == (32,)

    # A batch of 3 environments: vmap over carries and timesteps.
    batch = jax.tree.map(lambda x: jnp.stack([x] * 3), timestep)
    carries = jnp.stack([actor.init_carry()] * 3)
    carries, hidden = jax.vmap(actor.encode)(carries, batch)
    assert hidden.shape == (3, 5, 32)
    ```
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
