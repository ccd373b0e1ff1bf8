"""Exploration for value-based methods: ε-greedy with a linear ε schedule."""

import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray


Scalar = float | Float[Array, ""]


def linear_schedule(
    step: Int[Array, ""] | int, start: Scalar, end: Scalar, duration: Scalar
) -> Float[Array, ""]:
    """`start` at step 0, moving linearly to `end` at step `duration`, then
    constant. Every argument may be a JAX scalar, so a sweep over schedules is one
    `eqx.filter_vmap`.

    **Arguments:** `step`, the current step (an integer, or an integer JAX
    scalar inside a jitted loop); `start` and `end`, the values at step 0 and
    from step `duration` on; `duration`, the number of steps of the ramp (> 0).

    **Returns:** a float32 scalar, e.g. `linear_schedule(50, 1.0, 0.0, 100)` is
    0.5.
    """
    fraction = jnp.clip(jnp.asarray(step, jnp.float32) / duration, 0.0, 1.0)
    return start + fraction * (end - start)


def epsilon_greedy(
    key: PRNGKeyArray,
    q_values: Float[Array, "*batch actions"],
    epsilon: Scalar,
) -> Int[Array, "*batch"]:
    """The greedy action of `q_values`, replaced with probability `epsilon` by a
    uniformly random one (independently for every leading index).

    **Arguments:** `key`, a PRNG key for the coin flips and the random actions;
    `q_values`, shape `(*batch, actions)`; `epsilon`, the probability of a
    random action, a float or a JAX scalar (e.g. from `linear_schedule`).

    **Returns:** int32 actions of shape `batch`. A random action may happen to
    be the greedy one, so the greedy action is taken with probability
    $1 - \\epsilon + \\epsilon / \\mathrm{actions}$.
    """
    greedy_key, random_key = jr.split(key)
    batch, num_actions = q_values.shape[:-1], q_values.shape[-1]
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    random = jr.randint(random_key, batch, 0, num_actions, dtype=jnp.int32)
    explore = jr.uniform(greedy_key, batch) < epsilon
    return jnp.where(explore, random, greedy)
