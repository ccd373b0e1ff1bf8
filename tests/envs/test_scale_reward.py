import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import EpisodeStatistics, ScaleReward

from ._helpers import random_policy, rollout
from ._recording import cartpole, pendulum


def test_rewards_scaled_and_the_rest_unchanged():
    inner, params = pendulum()
    env = ScaleReward(EpisodeStatistics(inner), -0.5)
    traj = rollout(
        env, params, jax.random.key(6), policy=random_policy, num_envs=4, num_steps=30
    )
    traj = jax.tree.map(np.asarray, traj)
    info = traj["info"]
    assert traj["reward"].dtype == np.float32
    np.testing.assert_allclose(traj["reward"], -0.5 * info["raw_reward"], rtol=1e-6)
    # EpisodeStatistics inside records the unscaled returns.
    done = info["returned_episode"]
    assert done.sum() >= 4
    ends = np.flatnonzero(done[0])
    np.testing.assert_allclose(
        info["returned_episode_return"][0, ends[0]],
        info["raw_reward"][0, : ends[0] + 1].sum(),
        rtol=1e-5,
    )
    bare = rollout(
        inner, params, jax.random.key(6), policy=random_policy, num_envs=4, num_steps=30
    )
    np.testing.assert_array_equal(np.asarray(bare["obs"]), traj["obs"])


def test_equality_and_errors():
    inner, params = cartpole()
    assert ScaleReward(inner, 2.0) == ScaleReward(inner, 2.0)
    assert ScaleReward(inner, 2.0) != ScaleReward(inner, 3.0)
    obs, state = ScaleReward(inner, 2.0).reset(jax.random.key(0), params)
    *_, reward, _, _, _ = ScaleReward(inner, 2.0).step(
        jax.random.key(1), state, 0, params
    )
    assert reward == jnp.float32(2.0)
    for scale in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale must be a finite number"):
            ScaleReward(inner, scale)
