"""Rollouts and episode bookkeeping shared by the environment tests."""

import functools as ft

import jax
import jax.numpy as jnp
import numpy as np


# A policy is `policy(env, key, obs, state, arg) -> action`, where `arg` is any
# PyTree of arrays handed to `rollout` (traced, so changing it does not recompile).


def random_policy(env, key, obs, state, arg=None):
    del obs, state, arg
    return env.action_space(None).sample(key)


def constant_policy(env, key, obs, state, arg):
    """Always takes the action `arg`."""
    del env, key, obs, state
    return jnp.asarray(arg, dtype=jnp.int32)


def repeat_previous_oracle(env, key, obs, state, arg=None):
    """Reads the `k`-th most recent card's suit from the hidden state."""
    del key, obs, arg
    return state.history[(state.time - (env.k - 1)) % env.k]


def cartpole_oracle(env, key, obs, state, arg=None):
    """A linear controller on the full (hidden) state; keeps the pole up forever
    from CartPole's initial states."""
    del env, key, obs, arg
    force = (
        0.1 * state.x + 0.5 * state.x_dot + 10.0 * state.theta + 2.0 * state.theta_dot
    )
    return (force > 0).astype(jnp.int32)


def _fast_compile() -> dict:
    """XLA options for small test programs: its CPU optimisations take seconds on
    them (mostly the threefry PRNG), far longer than running them, and its fusion
    emitters triple their compile time. The latter flag is used where this XLA
    knows it."""
    options = {"xla_backend_optimization_level": 0}
    with_emitters_off = {**options, "xla_cpu_use_fusion_emitters": False}
    try:
        jax.jit(lambda x: x, compiler_options=with_emitters_off).lower(0.0).compile()
    except Exception:
        return options
    return with_emitters_off


FAST_COMPILE = _fast_compile()


@ft.partial(
    jax.jit,
    static_argnames=("env", "policy", "num_envs", "num_steps"),
    compiler_options=FAST_COMPILE,
)
def rollout(env, params, key, policy_arg=None, *, policy, num_envs, num_steps):
    """Runs `num_envs` environments for `num_steps` steps each (auto-resetting).

    Returns a dict of arrays with leading axes `(num_envs, num_steps)`: the
    observation each action was taken on, the action, the env state it was taken
    in, and what `env.step` returned.
    """

    def run_one(key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def body(carry, key):
            obs, state = carry
            policy_key, step_key = jax.random.split(key)
            action = policy(env, policy_key, obs, state, policy_arg)
            next_obs, next_state, reward, terminated, truncated, info = env.step(
                step_key, state, action, params
            )
            out = dict(
                obs=obs,
                state=state,
                action=action,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                info=info,
            )
            return (next_obs, next_state), out

        _, traj = jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps))
        return traj

    return jax.vmap(run_one)(jax.random.split(key, num_envs))


def completed_episodes(reward, done):
    """Returns and lengths of the episodes that finish within a rollout.

    `reward` and `done` have shape `(num_envs, num_steps)`; episodes still running
    at the end of the rollout are left out.
    """
    reward = np.asarray(reward, dtype=np.float64)
    done = np.asarray(done)
    returns, lengths = [], []
    for env_rewards, env_done in zip(reward, done):
        total, length = 0.0, 0
        for r, d in zip(env_rewards, env_done):
            total += r
            length += 1
            if d:
                returns.append(total)
                lengths.append(length)
                total, length = 0.0, 0
    return np.array(returns), np.array(lengths)
