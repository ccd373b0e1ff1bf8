from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces
from gymnax.environments.environment import Environment
from jaxtyping import Array, ArrayLike, Bool, Int, PRNGKeyArray, PyTree

from ._arguments import check_finite, mask_indices
from ._spaces import flat_box, map_boxes
from ._wrapper import AbstractObservationWrapper


# Salt folded into the step key for the noise draw, so the wrapped environment
# sees the key it would see unwrapped.
_NOISE_SALT = 0x4E6F69


def _leaf_spaces(space: Any) -> list:
    """The leaf spaces of a (possibly nested `Dict`/`Tuple`) space."""
    if isinstance(space, spaces.Dict):
        return [leaf for s in space.spaces.values() for leaf in _leaf_spaces(s)]
    if isinstance(space, spaces.Tuple):
        return [leaf for s in space.spaces for leaf in _leaf_spaces(s)]
    return [space]


class NoisyObservation(AbstractObservationWrapper):
    """Adds Gaussian noise to observations: each chosen entry gets an independent
    `Normal(0, std**2)` draw at every step.

    Observations are returned in float32, with the wrapped structure and shapes:
    `obs + std * eps` on the noisy entries (`eps` standard normal) and the other
    entries unchanged. The noise is drawn from the step key (folded with a
    constant, so the wrapped environment sees the keys it would see unwrapped):
    the same keys give the same observations, different steps' keys different
    noise, and each environment under `jax.vmap` draws its own. Where no episode
    ended, `info["final_observation"]` equals the returned observation (the same
    draw); where one did, the final observation and the new episode's first get
    independent draws. The observation space is the wrapped one as float32
    `Box`es whose noisy entries are unbounded.

    **Arguments:**

    - `env`: the environment to wrap; its observation space must be made of
        `Box`es (one, or a `Dict`/`Tuple` of them), and, with `mask`, be one flat
        `Box` of shape `(n,)`.
    - `std`: the standard deviation of the noise, finite and non-negative.
    - `mask`: which entries get noise (default: every entry of every leaf): a
        boolean mask of length `n` (`True` is noisy) or a non-empty sequence of
        distinct indices in `[0, n)`.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import make, NoisyObservation

    env, params = make("gymnax::CartPole-v1")  # [x, x_dot, theta, theta_dot]
    noisy = NoisyObservation(env, std=0.1, mask=[0, 2])  # noise on x and theta
    obs, state = noisy.reset(jax.random.key(0), params)
    clean, _ = env.reset(jax.random.key(0), params)
    assert (obs[1] == clean[1]) and (obs[0] != clean[0])
    ```
    """

    std: float = eqx.field(static=True)
    noisy: tuple[int, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        env: Environment,
        std: float,
        mask: Sequence[int]
        | Bool[ArrayLike, " _"]
        | Int[ArrayLike, " _"]
        | None = None,
    ):
        super().__init__(env)
        std = check_finite(std, "std")
        if std < 0.0:
            raise ValueError(f"std must be finite and non-negative, got {std}.")
        space = env.observation_space(env.default_params)
        if mask is None:
            other = [s for s in _leaf_spaces(space) if not isinstance(s, spaces.Box)]
            if other:
                raise ValueError(
                    "NoisyObservation needs env with an observation space made of "
                    f"Box spaces, got {other[0]!r}."
                )
            self.noisy = None
        else:
            low, _ = flat_box(space, "env")
            self.noisy = mask_indices(mask, low.shape[0])
        self.std = std

    def observation_space(self, params: Any = None) -> Any:
        def noisy_box(box: spaces.Box) -> spaces.Box:
            shape = tuple(box.shape)
            low = np.broadcast_to(np.asarray(box.low, np.float32), shape).copy()
            high = np.broadcast_to(np.asarray(box.high, np.float32), shape).copy()
            where = ... if self.noisy is None else np.array(self.noisy)
            low[where], high[where] = -np.inf, np.inf
            return spaces.Box(low, high, shape, np.float32)

        return map_boxes(self.env.observation_space(params), noisy_box)

    def observation(
        self, key: PRNGKeyArray, obs: PyTree, state: PyTree, first: Bool[Array, ""]
    ) -> PyTree:
        del state
        # `first` in the key: at a step that ended an episode, the final
        # observation and the next episode's first are drawn apart.
        key = jax.random.fold_in(jax.random.fold_in(key, _NOISE_SALT), first)
        leaves, treedef = jax.tree.flatten(obs)
        keys = jax.random.split(key, len(leaves))
        noisy = []
        for leaf_key, x in zip(keys, leaves):
            x = jnp.asarray(x).astype(jnp.float32)
            noise = self.std * jax.random.normal(leaf_key, x.shape, jnp.float32)
            if self.noisy is not None:
                where = np.zeros(x.shape, bool)
                where[np.array(self.noisy)] = True
                noise = jnp.where(where, noise, 0.0)
            noisy.append(x + noise)
        return jax.tree.unflatten(treedef, noisy)
