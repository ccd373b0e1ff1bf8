"""`DiscreteQNetwork` and `TwinDiscreteQNetwork`: action values for discrete
actions."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._linear import Linear
from .._mlp import MLP


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


class TwinDiscreteQNetwork(eqx.Module):
    """Two independently initialised action-value heads on the same input, the
    twin critics of discrete soft actor-critic (SACD; Christodoulou, 2019):
    `(time, in_features) -> (time, action_dim, 2)`, index `i` of the last axis
    being critic `q1` or `q2` (the twin axis is last, as in
    `TwinContinuousQNetwork`).

    Each critic is an optional `MLP` of widths `hidden` (ReLU) followed by a
    `DiscreteQNetwork`. The methods accept any leading shape:

    - `head.q_values(out)`: `min(Q1, Q2)` per action, the clipped double-Q
      estimate used for targets and for the actor's objective, `(..., action_dim)`;
    - `head.loss(out, actions, targets)`: `½ (Q1(actions) - targets)² +
      ½ (Q2(actions) - targets)²` per step, both critics regressed on the same
      target (which is not differentiated).

    **Arguments:** `in_features`; `action_dim`; `hidden` (`()`), the widths of
    each critic's hidden layers; `scale` (1.0), the orthogonal scale of the output
    layers; `key` (keyword only).
    """

    mlp1: MLP | None
    mlp2: MLP | None
    q1: DiscreteQNetwork
    q2: DiscreteQNetwork

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        hidden: Sequence[int] = (),
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        hidden = tuple(hidden)
        if action_dim <= 0:
            raise ValueError(
                "TwinDiscreteQNetwork: `action_dim` must be positive; "
                f"got {action_dim}."
            )
        if any(h <= 0 for h in hidden):
            raise ValueError(
                f"TwinDiscreteQNetwork: `hidden` widths must be positive; got {hidden}."
            )
        k_mlp1, k_mlp2, k1, k2 = jr.split(key, 4)
        if hidden:
            self.mlp1 = MLP(in_features=in_features, features=hidden, key=k_mlp1)
            self.mlp2 = MLP(in_features=in_features, features=hidden, key=k_mlp2)
            width = hidden[-1]
        else:
            self.mlp1 = self.mlp2 = None
            width = in_features
        kwargs = dict(in_features=width, action_dim=action_dim, scale=scale)
        self.q1 = DiscreteQNetwork(**kwargs, key=k1)
        self.q2 = DiscreteQNetwork(**kwargs, key=k2)

    @property
    def action_dim(self) -> int:
        """The number of actions (both critics share it)."""
        return self.q1.action_dim

    def __call__(
        self, x: Float[Array, "time in_features"]
    ) -> Float[Array, "time action_dim 2"]:
        x1 = x if self.mlp1 is None else jax.vmap(self.mlp1)(x)
        x2 = x if self.mlp2 is None else jax.vmap(self.mlp2)(x)
        return jnp.stack([self.q1(x1), self.q2(x2)], axis=-1)

    def q_values(
        self, out: Float[Array, "*batch action_dim 2"]
    ) -> Float[Array, "*batch action_dim"]:
        """`min(Q1, Q2)` for every action."""
        return jnp.min(out, axis=-1)

    def loss(
        self,
        out: Float[Array, "*batch action_dim 2"],
        actions: Int[Array, "*batch"],
        targets: Float[Array, "*batch"],
    ) -> Float[Array, "*batch"]:
        """`½ Σ_i (Q_i(actions) - targets)²` per step (targets are not
        differentiated)."""
        q = jnp.take_along_axis(out, actions[..., None, None], axis=-2)[..., 0, :]
        targets = jax.lax.stop_gradient(targets)[..., None]
        return 0.5 * jnp.sum((q - targets) ** 2, axis=-1)
