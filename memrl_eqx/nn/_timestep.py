"""`Timestep`: what a network sees at each step."""

import equinox as eqx
from jaxtyping import Array, Bool, Float, PyTree


class Timestep(eqx.Module):
    """The inputs of a network at each step of a sequence.

    - `obs`: the observation $o_t$ (any PyTree; leading axis time);
    - `prev_action`: $a_{t-1}$, zero where `reset` is set;
    - `prev_reward`: $r_{t-1}$, shape `(time,)`, zero where `reset` is set;
    - `reset`: shape `(time,)`, True where $o_t$ is the first observation of an
      episode (with gymnax auto-reset: `terminated | truncated` of the previous
      step).

    Unbatched over environments: a batch is a `Timestep` whose leaves have a
    leading batch axis, mapped over with `jax.vmap`.
    """

    obs: PyTree[Array]
    prev_action: Array
    prev_reward: Float[Array, "*time"]
    reset: Bool[Array, "*time"]
