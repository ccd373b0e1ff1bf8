"""`FeatureExtractor`: embeds and concatenates the parts of one timestep."""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._timestep import Timestep


class FeatureExtractor(eqx.Module):
    """Maps one step's `Timestep` to a feature vector.

    Each extractor given is applied to its part (`observation_extractor` to `obs`,
    `action_extractor` to `prev_action`, `reward_extractor` to `prev_reward` as a
    vector of one, `done_extractor` to `reset` as a float vector of one) and the
    results are concatenated. Conditioning on the previous action and reward (as
    RL$^2$ does) is just giving more extractors.
    """

    observation_extractor: Callable[..., Array]
    action_extractor: Callable[..., Array] | None = None
    reward_extractor: Callable[..., Array] | None = None
    done_extractor: Callable[..., Array] | None = None

    def __call__(self, timestep: Timestep) -> Float[Array, " features"]:
        parts = [self.observation_extractor(timestep.obs)]
        if self.action_extractor is not None:
            parts.append(self.action_extractor(timestep.prev_action))
        if self.reward_extractor is not None:
            parts.append(self.reward_extractor(jnp.reshape(timestep.prev_reward, (1,))))
        if self.done_extractor is not None:
            reset = jnp.reshape(timestep.reset, (1,)).astype(jnp.float32)
            parts.append(self.done_extractor(reset))
        return jnp.concatenate([jnp.ravel(p).astype(jnp.float32) for p in parts])
