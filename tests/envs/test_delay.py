import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import DelayObservation, DelayObservationState, make

from ._helpers import random_policy, rollout
from ._recording import cartpole, cartpole_obs, episode_steps


DELAY = 3
FILL = -7.0


def _rollout(env, params, key, num_envs=6, num_steps=64):
    traj = rollout(
        env, params, key, policy=random_policy, num_envs=num_envs, num_steps=num_steps
    )
    return jax.tree.map(np.asarray, traj)


def test_against_a_hand_loop_with_the_buffer_reset_at_every_episode_start():
    inner, params = cartpole()
    traj = _rollout(
        DelayObservation(inner, DELAY, fill=FILL), params, jax.random.key(0)
    )
    info = traj["info"]
    done = info["terminated"] | info["truncated"]
    num_envs, num_steps = done.shape
    # Episodes end often, both ways, and some last past the delay.
    assert done.sum() > 2 * num_envs
    assert info["terminated"].any() and info["truncated"].any()
    # The raw observation each action was taken on, from CartPole's state.
    raw = cartpole_obs(traj["state"].env_state)
    np.testing.assert_allclose(raw[:, 1:], info["raw_obs"][:, :-1], atol=1e-6)
    # The exact observations where the rollout saw them.
    raw[:, 1:] = info["raw_obs"][:, :-1]
    fill = np.full(4, FILL, np.float32)

    for e in range(num_envs):
        episode = []  # the raw observations of the episode in progress
        for t in range(num_steps):
            episode.append(raw[e, t])
            k = len(episode) - 1
            expected = episode[k - DELAY] if k >= DELAY else fill
            np.testing.assert_array_equal(traj["obs"][e, t], expected)
            final = info["final_observation"][e, t]
            if done[e, t]:
                # What the agent would have seen next: step k + 1 - DELAY of
                # the episode that ended, whose step k + 1 is the final one.
                seen = episode + [info["raw_final"][e, t]]
                j = k + 1 - DELAY
                np.testing.assert_array_equal(final, seen[j] if j >= 0 else fill)
                episode = []
            elif t + 1 < num_steps:
                np.testing.assert_array_equal(final, traj["obs"][e, t + 1])

    # The Flax original's buffer leaked the last episode's observations into the
    # first `delay` steps of the next; here each starts with `fill` alone.
    k = episode_steps(done)
    restarted = (k < DELAY) & (np.cumsum(done, axis=1) - done > 0)
    assert restarted.sum() > num_envs
    np.testing.assert_array_equal(traj["obs"][restarted], FILL)
    assert (np.abs(traj["obs"][k >= DELAY]) < 5).all()  # real observations there


def test_state_spaces_and_dtypes():
    inner, params = cartpole()
    env = DelayObservation(inner, 2, fill=10.0)
    box = inner.observation_space(params)
    space = env.observation_space(params)
    assert space.shape == (4,) and space.dtype == box.dtype
    np.testing.assert_array_equal(space.low, box.low)
    np.testing.assert_array_equal(space.high, np.maximum(box.high, 10.0))
    obs, state = env.reset(jax.random.key(0), params)
    assert isinstance(state, DelayObservationState)
    assert state.window.shape == (3, 4)
    np.testing.assert_array_equal(state.window[-1], cartpole_obs(state.env_state))
    np.testing.assert_array_equal(obs, 10.0)

    # Boolean image observations keep their dtype; the fill is cast to it.
    minatar, mparams = make("gymnax::Breakout-MinAtar")
    env = DelayObservation(minatar, 1, fill=0.0)
    assert env.observation_space(mparams).shape == (10, 10, 4)
    obs, state = env.reset(jax.random.key(0), mparams)
    first = state.window[-1]
    assert obs.dtype == first.dtype and not obs.any()
    with jax.numpy_dtype_promotion("standard"):
        obs, state, *_ = env.step(jax.random.key(1), state, 0, mparams)
    np.testing.assert_array_equal(obs, first)


def test_value_equality_and_errors():
    inner, _ = cartpole()
    assert DelayObservation(inner, 2) == DelayObservation(inner, 2)
    assert hash(DelayObservation(inner, 2)) == hash(DelayObservation(inner, 2))
    assert DelayObservation(inner, 2) != DelayObservation(inner, 3)
    for delay in (0, -1, True):
        with pytest.raises(ValueError, match="delay must be a positive int"):
            DelayObservation(inner, delay)
    with pytest.raises(ValueError, match="fill must be a number"):
        DelayObservation(inner, 1, fill=float("nan"))
    # Built outside jit, it runs under vmap and jit.
    env, params = make("gymnax::Catch-bsuite")
    env = DelayObservation(env, 1)
    keys = jax.random.split(jax.random.key(0), 3)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (3, 10, 5) and not jnp.any(obs)
