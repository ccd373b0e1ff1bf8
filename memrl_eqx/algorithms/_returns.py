"""Advantage and return estimators shared by the algorithms."""

import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def gae(
    rewards: Float[Array, " time"],
    values: Float[Array, " time"],
    next_values: Float[Array, " time"],
    terminated: Bool[Array, " time"],
    done: Bool[Array, " time"],
    gamma: float | Float[Array, ""],
    gae_lambda: float | Float[Array, ""],
) -> tuple[Float[Array, " time"], Float[Array, " time"]]:
    """Generalised advantage estimation (Schulman et al. 2016), with truncation.

    $\\delta_t = r_t + \\gamma (1 - \\mathrm{terminated}_t) V'_t - V_t$ and
    $A_t = \\delta_t + \\gamma\\lambda (1 - \\mathrm{done}_t) A_{t+1}$.

    `next_values[t]` is the value of the observation that follows step `t` in the
    *same* episode: $V(o_{t+1})$ normally, and $V$ of the final observation where
    the episode was truncated at `t`. Only `terminated` zeroes the bootstrap;
    `done = terminated | truncated` stops the advantage from flowing across an
    episode boundary.

    **Returns:** `(advantages, returns)` with `returns = advantages + values`.
    """
    deltas = rewards + gamma * jnp.where(terminated, 0.0, next_values) - values
    discounts = gamma * gae_lambda * jnp.where(done, 0.0, 1.0)

    def step(advantage, inputs):
        delta, discount = inputs
        advantage = delta + discount * advantage
        return advantage, advantage

    _, advantages = lax.scan(
        step, jnp.zeros((), values.dtype), (deltas, discounts), reverse=True
    )
    return advantages, advantages + values
