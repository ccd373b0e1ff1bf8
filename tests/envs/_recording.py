"""An innermost wrapper that records what an environment itself saw and returned,
so that the wrappers around it can be checked against a numpy replay of the raw
stream, and the episode bookkeeping such replays share."""

import jax
import numpy as np

from memrl_eqx.envs import AbstractWrapper, make


class Recorder(AbstractWrapper):
    """Runs a gymnax env under standard dtype promotion (gymnax's classic control
    mixes Python floats and integer actions) and records in `info` its raw
    observation, final observation, the action it executed and its reward."""

    def reset(self, key, params=None):
        with jax.numpy_dtype_promotion("standard"):
            obs, state = self.env.reset(key, params)
        # Pendulum resets to weakly typed leaves that stepping makes strong.
        return obs, jax.tree.map(lambda x: x.astype(x.dtype), state)

    def step(self, key, state, action, params=None):
        with jax.numpy_dtype_promotion("standard"):
            obs, state, reward, terminated, truncated, info = self.env.step(
                key, state, action, params
            )
        info = dict(
            info,
            raw_obs=obs,
            raw_final=info["final_observation"],
            raw_action=action,
            raw_reward=reward,
        )
        return obs, state, reward, terminated, truncated, info


def cartpole(max_steps=15):
    """CartPole with a short time limit, so that random episodes both terminate
    and are truncated."""
    env, params = make("gymnax::CartPole-v1")
    return Recorder(env), params.replace(max_steps_in_episode=max_steps)


def pendulum(max_steps=12):
    env, params = make("gymnax::Pendulum-v1")
    return Recorder(env), params.replace(max_steps_in_episode=max_steps)


def cartpole_obs(state):
    """CartPole's observations from its (batched) hidden states."""
    fields = ("x", "x_dot", "theta", "theta_dot")
    return np.stack([np.asarray(getattr(state, f)) for f in fields], axis=-1)


def episode_steps(done):
    """`k[e, t]`, the index of step `t` within its episode in environment `e`
    (`0` at an episode's first step), from `done` of shape `(envs, steps)`."""
    done = np.asarray(done)
    k = np.zeros(done.shape, dtype=int)
    for t in range(1, done.shape[1]):
        k[:, t] = np.where(done[:, t - 1], 0, k[:, t - 1] + 1)
    return k
