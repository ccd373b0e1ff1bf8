"""What every replay method shares: acting into a `SequenceReplay`, and turning
a sampled window back into network inputs with the right starting carry."""

from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ..nn import Timestep
from ._rollout import episode_info, episode_metrics, step_once


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

    # Leading axis `num_envs`: split across devices by `memrl_eqx.shard`.
    env_batched_fields: ClassVar[tuple[str, ...]] = ("env_state", "timestep", "carry")


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
        info = episode_info(info)
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


_REPLAY_INTEGERS = (
    "num_envs",
    "rollout_length",
    "gradient_steps",
    "buffer_capacity",
    "batch_size",
    "sequence_length",
    "target_update_period",
)


def check_replay_config(config: Any, name: str) -> None:
    """The checks every replay method's config shares: positive sizes (and
    `n_step` where there is one), a non-negative `burn_in_length`, `sampling` in
    {"segments", "tape"} with no burn-in for tape, a window (`config.window_length`)
    and a rollout that fit in `buffer_capacity`, and `gamma` in [0, 1]. Errors
    name the config (`name`) and the field."""
    integers = _REPLAY_INTEGERS + (("n_step",) if hasattr(config, "n_step") else ())
    for field in integers:
        value = getattr(config, field)
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name}: `{field}` must be a positive integer; got {value!r}."
            )
    value = config.burn_in_length
    if not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{name}: `burn_in_length` must be a non-negative integer; got {value!r}."
        )
    if config.sampling not in ("segments", "tape"):
        raise ValueError(
            f"{name}: `sampling` must be 'segments' or 'tape'; got {config.sampling!r}."
        )
    if config.sampling == "tape" and config.burn_in_length > 0:
        raise ValueError(
            f"{name}: `burn_in_length` must be 0 with `sampling='tape'` (windows "
            "start at episode starts, from the initial carry, so there is no stored "
            f"state to refresh); got {config.burn_in_length}."
        )
    if config.window_length > config.buffer_capacity:
        raise ValueError(
            f"{name}: `buffer_capacity` ({config.buffer_capacity} slots per "
            f"environment) must hold a window of {config.window_length} steps "
            "(`burn_in_length + sequence_length` and the steps of the targets)."
        )
    if config.rollout_length > config.buffer_capacity:
        raise ValueError(
            f"{name}: `rollout_length` ({config.rollout_length}) must not exceed "
            f"`buffer_capacity` ({config.buffer_capacity})."
        )
    value = config.gamma
    if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: `gamma` must lie in [0, 1]; got {value}.")
