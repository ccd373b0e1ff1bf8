"""What every replay method shares: acting into a `SequenceReplay`, and turning
a sampled window back into network inputs with the right starting carry."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ..nn import Timestep
from ._rollout import EPISODE_INFO, episode_metrics, step_once


class Transition(eqx.Module):
    """One stored step of one environment.

    - `timestep`: the networks' input at step `t` (observation $o_t$, previous
      action and reward, reset flag);
    - `carry`: the carries of the acting networks *before* step `t` (the stored
      state from which a replayed sequence starting at `t` is run);
    - `action` $a_t$, `reward` $r_t$, `terminated`, `truncated` (after step `t`).

    Stored and sampled with leading axes (environment, time) or (batch, time).
    """

    timestep: Timestep
    carry: PyTree[Array]
    action: Array
    reward: Float[Array, "*batch"]
    terminated: Bool[Array, "*batch"]
    truncated: Bool[Array, "*batch"]


class Acting(eqx.Module):
    """The acting half of a replay method's state, one entry per environment:
    `env_state`, `timestep` (the next input) and `carry` (the acting networks'
    carries)."""

    env_state: PyTree[Any]
    timestep: Timestep
    carry: PyTree[Array]


Act = Callable[[PyTree[Array], Timestep, PRNGKeyArray], tuple[PyTree[Array], Array]]
"""`act(carry, timestep, key) -> (carry, action)` for one environment and one step."""


def collect(
    env: Environment,
    env_params: PyTree[Any],
    act: Act,
    acting: Acting,
    key: PRNGKeyArray,
    num_steps: int,
) -> tuple[Acting, Transition, dict[str, Float[Array, ""]]]:
    """Step every environment `num_steps` times with `act`.

    **Returns:** `(acting, transitions, metrics)`: the new acting state; the
    `Transition`s with leaves `(num_envs, num_steps, ...)`, ready for
    `SequenceReplay.add`; and `episode_metrics` of the episodes that ended.
    """
    num_envs = acting.timestep.reset.shape[0]

    def step(acting: Acting, key):
        act_key, env_key = jr.split(key)
        carry, action = jax.vmap(act)(
            acting.carry, acting.timestep, jr.split(act_key, num_envs)
        )
        env_state, timestep, reward, terminated, truncated, info = step_once(
            env, env_params, env_key, acting.env_state, action
        )
        transition = Transition(
            timestep=acting.timestep,
            carry=acting.carry,
            action=action,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
        )
        info = {k: info[k] for k in EPISODE_INFO}
        return Acting(env_state, timestep, carry), (transition, info)

    acting, (transitions, info) = lax.scan(step, acting, jr.split(key, num_steps))
    env_major = lambda x: jnp.swapaxes(x, 0, 1)
    return acting, jtu.tree_map(env_major, transitions), episode_metrics(info)


def start_carry(
    transitions: Transition, init_carry: PyTree[Array], tape: bool
) -> PyTree[Array]:
    """The carry a replayed window (one sequence, leaves `(time, ...)`) starts
    from: the stored carry of its first step, or, for tape-based windows (which
    start at an episode start), the initial carry, which the reset flag of that
    first step makes equivalent."""
    if tape:
        return init_carry
    return jtu.tree_map(lambda c: c[0], transitions.carry)


def episode_starts(transitions: Transition) -> Bool[Array, "*batch"]:
    """Where a stored step begins an episode: the start mask of tape-based
    sampling."""
    return transitions.timestep.reset
