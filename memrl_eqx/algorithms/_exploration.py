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
    `eqx.filter_vmap`."""
    fraction = jnp.clip(jnp.asarray(step, jnp.float32) / duration, 0.0, 1.0)
    return start + fraction * (end - start)


def epsilon_greedy(
    key: PRNGKeyArray,
    q_values: Float[Array, "*batch actions"],
    epsilon: Scalar,
) -> Int[Array, "*batch"]:
    """The greedy action of `q_values`, replaced with probability `epsilon` by a
    uniformly random one (independently for every leading index)."""
    greedy_key, random_key = jr.split(key)
    batch, num_actions = q_values.shape[:-1], q_values.shape[-1]
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    random = jr.randint(random_key, batch, 0, num_actions, dtype=jnp.int32)
    explore = jr.uniform(greedy_key, batch) < epsilon
    return jnp.where(explore, random, greedy)
