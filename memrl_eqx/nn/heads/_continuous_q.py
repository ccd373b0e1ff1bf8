"""`ContinuousQNetwork` and `TwinContinuousQNetwork`: action values for
continuous actions."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear
from .._mlp import MLP


class ContinuousQNetwork(eqx.Module):
    """The action value `Q(x_t, a_t)` of a continuous action, from
    `concat(x_t, a_t)`: `head(x, action)` maps `(time, in_features)` and
    `(time, action_dim)` to `(time,)`.

    The input goes through an `MLP` of widths `hidden` (ReLU, empty by default)
    and a final `Linear` to one output. The value-head interface is `VNetwork`'s:
    `head.value(out)` is the output itself, `head.loss(out, targets)` is
    `½ (out - targets)²` per step, both for any leading shape.

    **Arguments:** `in_features`; `action_dim`; `hidden` (`()`), the widths of the
    hidden layers; `scale` (1.0), the orthogonal scale of the output layer; `key`
    (keyword only).
    """

    mlp: MLP | None
    linear: Linear
    action_dim: int = eqx.field(static=True)

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
                f"ContinuousQNetwork: `action_dim` must be positive; got {action_dim}."
            )
        if any(h <= 0 for h in hidden):
            raise ValueError(
                f"ContinuousQNetwork: `hidden` widths must be positive; got {hidden}."
            )
        k_mlp, k_out = jr.split(key)
        width = in_features + action_dim
        if hidden:
            self.mlp = MLP(in_features=width, features=hidden, key=k_mlp)
            width = hidden[-1]
        else:
            self.mlp = None
        self.linear = Linear(width, 1, scale=scale, key=k_out)
        self.action_dim = action_dim

    def _q(
        self, x: Float[Array, " in_features"], action: Float[Array, " action_dim"]
    ) -> Float[Array, ""]:
        h = jnp.concatenate([x, action])
        if self.mlp is not None:
            h = self.mlp(h)
        return self.linear(h)[0]

    def __call__(
        self,
        x: Float[Array, "time in_features"],
        action: Float[Array, "time action_dim"],
    ) -> Float[Array, " time"]:
        return jax.vmap(self._q)(x, action)

    def value(self, out: Float[Array, "*batch"]) -> Float[Array, "*batch"]:
        """`Q(x, a)` (the output itself)."""
        return out

    def loss(
        self, out: Float[Array, "*batch"], targets: Float[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """`½ (out - targets)²` per step (targets are not differentiated)."""
        return 0.5 * (out - jax.lax.stop_gradient(targets)) ** 2


class TwinContinuousQNetwork(eqx.Module):
    """Two independently initialised `ContinuousQNetwork`s on the same input, the
    twin critics of TD3 and SAC (Fujimoto et al., 2018; Haarnoja et al., 2018):
    `head(x, action)` maps `(time, in_features)` and `(time, action_dim)` to
    `(time, 2)`, column `i` being critic `q1` or `q2`.

    - `head.value(out)`: `min(Q1, Q2)`, the clipped double-Q estimate used for
      targets and for the actor's objective, `(...)`;
    - `head.loss(out, targets)`: `½ (Q1 - targets)² + ½ (Q2 - targets)²` per step,
      each critic regressed on the same target.

    **Arguments:** as `ContinuousQNetwork` (`in_features`, `action_dim`,
    `hidden=()`, `scale=1.0`, `key`).
    """

    q1: ContinuousQNetwork
    q2: ContinuousQNetwork

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        hidden: Sequence[int] = (),
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        k1, k2 = jr.split(key)
        kwargs = dict(
            in_features=in_features, action_dim=action_dim, hidden=hidden, scale=scale
        )
        self.q1 = ContinuousQNetwork(**kwargs, key=k1)
        self.q2 = ContinuousQNetwork(**kwargs, key=k2)

    @property
    def action_dim(self) -> int:
        """The size of an action vector (both critics share it)."""
        return self.q1.action_dim

    def __call__(
        self,
        x: Float[Array, "time in_features"],
        action: Float[Array, "time action_dim"],
    ) -> Float[Array, "time 2"]:
        return jnp.stack([self.q1(x, action), self.q2(x, action)], axis=-1)

    def value(self, out: Float[Array, "*batch 2"]) -> Float[Array, "*batch"]:
        """`min(Q1, Q2)`."""
        return jnp.min(out, axis=-1)

    def loss(
        self, out: Float[Array, "*batch 2"], targets: Float[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """`½ Σ_i (Q_i - targets)²` per step (targets are not differentiated)."""
        targets = jax.lax.stop_gradient(targets)[..., None]
        return 0.5 * jnp.sum((out - targets) ** 2, axis=-1)
