import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import make, StickyAction, StickyActionState

from ._helpers import random_policy, rollout
from ._recording import cartpole, episode_steps, pendulum


def _rollout(env, params, key, num_envs=8, num_steps=64):
    traj = rollout(
        env, params, key, policy=random_policy, num_envs=num_envs, num_steps=num_steps
    )
    return jax.tree.map(np.asarray, traj)


def test_against_a_hand_loop():
    p = 0.4
    inner, params = cartpole()
    traj = _rollout(StickyAction(inner, p), params, jax.random.key(4))
    info = traj["info"]
    done = info["terminated"] | info["truncated"]
    assert done.sum() > 16
    action, executed = traj["action"], info["raw_action"]
    first = episode_steps(done) == 0
    # The first step of every episode executes the agent's action, even when the
    # last step of the episode before executed another.
    np.testing.assert_array_equal(executed[first], action[first])
    previous = np.concatenate([np.zeros_like(executed[:, :1]), executed[:, :-1]], 1)
    assert (previous[first][1:] != action[first][1:]).any()
    # Elsewhere the previous executed action or the agent's; where the two differ
    # the previous one is repeated with probability p.
    later = ~first
    repeated = executed == previous
    assert (repeated | (executed == action))[later].all()
    telling = later & (action != previous)
    rate = repeated[telling].mean()
    stderr = np.sqrt(p * (1 - p) / telling.sum())
    assert abs(rate - p) < 4 * stderr, (rate, stderr)
    # The state holds the executed action and whether an episode starts next.
    state = traj["state"]
    assert isinstance(state, StickyActionState)
    np.testing.assert_array_equal(state.previous_action[:, 1:], executed[:, :-1])
    np.testing.assert_array_equal(state.first, first)


def test_always_and_never_sticking_with_continuous_actions():
    inner, params = pendulum()
    always = _rollout(StickyAction(inner, 1.0), params, jax.random.key(5), 4, 30)
    done = always["info"]["terminated"] | always["info"]["truncated"]
    assert done.sum() >= 4
    executed = always["info"]["raw_action"][..., 0]
    action = always["action"][..., 0]
    # Each episode executes its first action throughout.
    k = episode_steps(done)
    for e in range(4):
        for t in range(30):
            start = t - k[e, t]
            assert executed[e, t] == action[e, start]
    assert executed.dtype == np.float32
    never = _rollout(StickyAction(inner, 0.0), params, jax.random.key(5), 4, 30)
    np.testing.assert_array_equal(never["info"]["raw_action"], never["action"])
    # Without the wrapper the same keys give the same trajectory as p = 0.
    bare = _rollout(inner, params, jax.random.key(5), 4, 30)
    np.testing.assert_array_equal(bare["reward"], never["reward"])


def test_spaces_equality_and_errors():
    inner, params = cartpole()
    env = StickyAction(inner, 0.1)
    assert env.action_space(params).n == 2
    assert env.observation_space(params).shape == (4,)
    assert env == StickyAction(inner, 0.1) and env != StickyAction(inner, 0.2)
    assert hash(env) == hash(StickyAction(inner, 0.1))
    obs, state = env.reset(jax.random.key(0), params)
    assert state.previous_action.dtype == jnp.int32 and bool(state.first)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"probability must be in \[0, 1\]"):
            StickyAction(inner, p)
    minatar, _ = make("gymnax::Breakout-MinAtar")
    StickyAction(minatar)  # any Discrete action space
