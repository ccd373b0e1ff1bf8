"""`C51QNetwork` and `categorical_projection`: categorical distributional action
values (Bellemare, Dabney and Munos, 2017, "A Distributional Perspective on
Reinforcement Learning")."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._linear import Linear


def categorical_projection(
    probs: Float[Array, "*batch num_atoms"],
    rewards: Float[Array, "*batch"],
    discounts: Float[Array, "*batch"],
    support: Float[Array, " num_atoms"],
) -> Float[Array, "*batch num_atoms"]:
    """The C51 projection of the distributional Bellman target onto `support`.

    The target distribution puts mass `probs[j]` on `rewards + discounts *
    support[j]`; each such point is clipped to `[support[0], support[-1]]` and its
    mass split between the two neighbouring atoms in proportion to closeness
    (Bellemare et al. 2017, Algorithm 1). Equivalently, with atom spacing `Δz`,

    `projected[i] = Σ_j probs[j] * max(0, 1 - |clip(r + γ z_j) - z_i| / Δz)`,

    which also covers a point that lands exactly on an atom. Total mass is
    conserved. `support` must be evenly spaced and increasing (as
    `jnp.linspace(v_min, v_max, num_atoms)`); `discounts` is `γ (1 - terminated)`
    (or `γ^n` for n-step targets). Any leading shape `*batch` is accepted.
    """
    if support.shape[0] < 2:
        raise ValueError(
            "categorical_projection: `support` needs at least 2 atoms; got "
            f"{support.shape[0]}."
        )
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (support.shape[0] - 1)
    atoms = jnp.broadcast_to(support, probs.shape)
    target = jnp.clip(rewards[..., None] + discounts[..., None] * atoms, v_min, v_max)
    # weight[..., i, j]: the share of target point j that goes to atom i.
    distance = jnp.abs(target[..., None, :] - atoms[..., :, None])
    weight = jnp.clip(1 - distance / delta, 0, 1)
    return jnp.sum(weight * probs[..., None, :], axis=-1)


def _taken(
    logits: Float[Array, "*batch action_dim num_atoms"], actions: Int[Array, "*batch"]
) -> Float[Array, "*batch num_atoms"]:
    index = jnp.broadcast_to(
        actions[..., None, None], actions.shape + (1, logits.shape[-1])
    )
    return jnp.take_along_axis(logits, index, axis=-2)[..., 0, :]


class C51QNetwork(eqx.Module):
    """Categorical distributional action values (C51).

    Maps torso outputs `(time, in_features)` to logits `(time, action_dim,
    num_atoms)`: for each action, a softmax distribution of the return over the
    fixed atoms `support = linspace(v_min, v_max, num_atoms)`.

    The value-head interface (shared with `DiscreteQNetwork`):

    - `out = head(x)`: the logits;
    - `head.q_values(out)`: `Σ_i p_i z_i` per action, `(..., action_dim)`;
    - `head.target(next_out, rewards, discounts, next_actions=None)`: the
      projected distributional Bellman target (`categorical_projection` of the next
      state's distribution for `next_actions`, greedy by default), gradient
      stopped, `(..., num_atoms)`;
    - `head.loss(out, actions, targets)`: the cross-entropy between `targets`
      (probabilities over the atoms) and the predicted distribution of the taken
      action, per step, `(...)`.

    All methods accept any leading shape (`(time,)`, `(batch, time)`, ...).

    **Arguments:** `in_features`; `action_dim`; `num_atoms` (51); `v_min` (-10.0);
    `v_max` (10.0); `scale` (1.0), the orthogonal scale of the output layer; `key`
    (keyword only).
    """

    linear: Linear
    action_dim: int = eqx.field(static=True)
    num_atoms: int = eqx.field(static=True)
    v_min: float = eqx.field(static=True)
    v_max: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        num_atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        if action_dim <= 0:
            raise ValueError(
                f"C51QNetwork: `action_dim` must be positive; got {action_dim}."
            )
        if num_atoms < 2:
            raise ValueError(
                f"C51QNetwork: `num_atoms` must be at least 2; got {num_atoms}."
            )
        if not v_min < v_max:
            raise ValueError(
                f"C51QNetwork: expected `v_min < v_max`; got {v_min} and {v_max}."
            )
        self.linear = Linear(in_features, action_dim * num_atoms, scale=scale, key=key)
        self.action_dim = action_dim
        self.num_atoms = num_atoms
        self.v_min = float(v_min)
        self.v_max = float(v_max)

    @property
    def support(self) -> Float[Array, " num_atoms"]:
        """The atoms `linspace(v_min, v_max, num_atoms)`."""
        return jnp.linspace(self.v_min, self.v_max, self.num_atoms)

    def __call__(
        self, x: Float[Array, "time in_features"]
    ) -> Float[Array, "time action_dim num_atoms"]:
        logits = jax.vmap(self.linear)(x)
        return logits.reshape(x.shape[0], self.action_dim, self.num_atoms)

    def q_values(
        self, out: Float[Array, "*batch action_dim num_atoms"]
    ) -> Float[Array, "*batch action_dim"]:
        """The expected return of each action, `Σ_i softmax(out)_i z_i`."""
        probs = jax.nn.softmax(out, axis=-1)
        return jnp.sum(probs * jnp.broadcast_to(self.support, probs.shape), axis=-1)

    def target(
        self,
        next_out: Float[Array, "*batch action_dim num_atoms"],
        rewards: Float[Array, "*batch"],
        discounts: Float[Array, "*batch"],
        next_actions: Int[Array, "*batch"] | None = None,
    ) -> Float[Array, "*batch num_atoms"]:
        """The projected target distribution (no gradient flows into it).

        **Arguments:** `next_out`, this head's output at the next states (usually
        from a target network); `rewards`; `discounts`, `γ (1 - terminated)`;
        `next_actions`, the actions whose distribution is bootstrapped (None:
        greedy in `next_out`; pass the online network's argmax for double DQN).
        """
        next_out = jax.lax.stop_gradient(next_out)
        if next_actions is None:
            next_actions = jnp.argmax(self.q_values(next_out), axis=-1)
        probs = jax.nn.softmax(_taken(next_out, next_actions), axis=-1)
        projected = categorical_projection(probs, rewards, discounts, self.support)
        return jax.lax.stop_gradient(projected)

    def loss(
        self,
        out: Float[Array, "*batch action_dim num_atoms"],
        actions: Int[Array, "*batch"],
        targets: Float[Array, "*batch num_atoms"],
    ) -> Float[Array, "*batch"]:
        """Cross-entropy `-Σ_i targets_i log p_i(actions)`, per step."""
        log_probs = jax.nn.log_softmax(_taken(out, actions), axis=-1)
        return -jnp.sum(jax.lax.stop_gradient(targets) * log_probs, axis=-1)
