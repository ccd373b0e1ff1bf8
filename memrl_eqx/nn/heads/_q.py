"""`DiscreteQNetwork`: action values for discrete actions."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._linear import Linear


class DiscreteQNetwork(eqx.Module):
    """Action values: `(time, in_features) -> (time, action_dim)`.

    The value-head interface (shared with `C51QNetwork`):

    - `out = head(x)`: the action values;
    - `head.q_values(out)`: the same array, `(..., action_dim)`;
    - `head.target(next_out, rewards, discounts, next_actions=None)`:
      `rewards + discounts * Q(next, next_actions)` (greedy by default), gradient
      stopped;
    - `head.loss(out, actions, targets)`: `½ (Q(actions) - targets)²` per step.

    All methods but `__call__` accept any leading shape.

    **Arguments:** `in_features`; `action_dim`; `scale` (1.0), the orthogonal scale
    of the output layer; `key` (keyword only).
    """

    linear: Linear
    action_dim: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        self.linear = Linear(in_features, action_dim, scale=scale, key=key)
        self.action_dim = action_dim

    def __call__(
        self, x: Float[Array, "time in_features"]
    ) -> Float[Array, "time action_dim"]:
        return jax.vmap(self.linear)(x)

    def q_values(
        self, out: Float[Array, "*batch action_dim"]
    ) -> Float[Array, "*batch action_dim"]:
        """The action values (the output itself)."""
        return out

    def target(
        self,
        next_out: Float[Array, "*batch action_dim"],
        rewards: Float[Array, "*batch"],
        discounts: Float[Array, "*batch"],
        next_actions: Int[Array, "*batch"] | None = None,
    ) -> Float[Array, "*batch"]:
        """The one-step target `r + discount * Q(next, a')`, with `a'` =
        `next_actions` or, if None, the greedy action in `next_out`; `discounts` is
        `γ (1 - terminated)`. No gradient flows into it."""
        next_out = jax.lax.stop_gradient(next_out)
        if next_actions is None:
            next_q = jnp.max(next_out, axis=-1)
        else:
            next_q = jnp.take_along_axis(next_out, next_actions[..., None], axis=-1)
            next_q = next_q[..., 0]
        return rewards + discounts * next_q

    def loss(
        self,
        out: Float[Array, "*batch action_dim"],
        actions: Int[Array, "*batch"],
        targets: Float[Array, "*batch"],
    ) -> Float[Array, "*batch"]:
        """`½ (Q(actions) - targets)²` per step (targets are not differentiated)."""
        q = jnp.take_along_axis(out, actions[..., None], axis=-1)[..., 0]
        return 0.5 * (q - jax.lax.stop_gradient(targets)) ** 2
