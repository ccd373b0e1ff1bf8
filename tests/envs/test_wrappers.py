import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.environment import Environment

from memrl_eqx.envs import EpisodeStatistics, EpisodeStatisticsState, make

from ._helpers import cartpole_oracle, constant_policy, random_policy, rollout


def _wrapped_cartpole_oracle(env, key, obs, state, arg):
    return cartpole_oracle(env.env, key, obs, state.env_state, arg)


def _check_statistics(traj):
    """Replays a rollout by hand and checks every step's statistics against it."""
    reward = np.asarray(traj["reward"], dtype=np.float64)
    done = np.asarray(traj["terminated"] | traj["truncated"])
    info = jax.tree.map(np.asarray, traj["info"])
    np.testing.assert_array_equal(info["returned_episode"], done)
    for env in range(reward.shape[0]):
        total, length = 0.0, 0
        last_total, last_length = 0.0, 0  # nothing has finished yet
        for t in range(reward.shape[1]):
            total += reward[env, t]
            length += 1
            if done[env, t]:
                last_total, last_length = total, length
                total, length = 0.0, 0
            returned = float(info["returned_episode_return"][env, t])
            assert returned == pytest.approx(last_total, abs=1e-5)
            assert int(info["returned_episode_length"][env, t]) == last_length


def test_known_episode():
    # RepeatPrevious with k = 1 asks for the suit in view at every one of the 51
    # steps of a one-deck episode, each worth 1/51. Always answering suit 0 earns
    # +1/51 when the card in view is of suit 0 and -1/51 otherwise.
    env, params = make("popgym::RepeatPrevious", k=1, num_decks=1)
    env = EpisodeStatistics(env)
    traj = rollout(
        env,
        params,
        jax.random.key(0),
        jnp.int32(0),
        policy=constant_policy,
        num_envs=1,
        num_steps=60,
    )
    suits = np.argmax(np.asarray(traj["obs"][0, :51]), axis=-1)
    expected_return = np.sum(np.where(suits == 0, 1 / 51, -1 / 51))
    info = jax.tree.map(lambda x: np.asarray(x[0]), traj["info"])

    np.testing.assert_array_equal(np.flatnonzero(info["returned_episode"]), [50])
    assert info["returned_episode_return"][50] == pytest.approx(expected_return)
    assert info["returned_episode_length"][50] == 51
    assert info["returned_episode_return"][50] == pytest.approx(
        np.sum(np.asarray(traj["reward"][0, :51], dtype=np.float64))
    )
    # Before the episode ends nothing has been returned; after it, its values
    # are kept while the next episode runs.
    np.testing.assert_array_equal(info["returned_episode_return"][:50], 0.0)
    np.testing.assert_array_equal(info["returned_episode_length"][:50], 0)
    np.testing.assert_allclose(info["returned_episode_return"][50:], expected_return)
    np.testing.assert_array_equal(info["returned_episode_length"][50:], 51)
    # The running statistics restart with the new episode.
    state = traj["state"]
    assert int(state.episode_length[0, 51]) == 0
    assert float(state.episode_return[0, 51]) == 0.0
    assert int(state.episode_length[0, 59]) == 8


def test_vmap_jit_matches_hand_bookkeeping_and_the_inner_env():
    # Random StatelessCartPole episodes end at different steps in each env.
    inner, params = make("popgym::StatelessCartPoleEasy")
    env = EpisodeStatistics(inner)
    key = jax.random.key(1)
    kwargs = dict(policy=random_policy, num_envs=8, num_steps=120)
    traj = rollout(env, params, key, **kwargs)
    assert np.asarray(traj["info"]["returned_episode"]).sum() > 8
    _check_statistics(traj)

    # The wrapper changes nothing the inner env returns.
    inner_traj = rollout(inner, params, key, **kwargs)
    for name in ("obs", "action", "reward", "terminated", "truncated"):
        np.testing.assert_array_equal(traj[name], inner_traj[name])
    assert set(traj["info"]) == set(inner_traj["info"]) | {
        "returned_episode",
        "returned_episode_return",
        "returned_episode_length",
    }
    for name, value in inner_traj["info"].items():
        np.testing.assert_array_equal(traj["info"][name], value)


def test_counts_truncated_episodes():
    inner, params = make("popgym::StatelessCartPole", max_steps_in_episode=10)
    traj = rollout(
        EpisodeStatistics(inner),
        params,
        jax.random.key(2),
        policy=_wrapped_cartpole_oracle,
        num_envs=2,
        num_steps=25,
    )
    info = traj["info"]
    ends = np.zeros((2, 25), dtype=bool)
    ends[:, [9, 19]] = True
    np.testing.assert_array_equal(info["returned_episode"], ends)
    np.testing.assert_array_equal(info["truncated"], ends)
    assert not np.asarray(info["terminated"]).any()
    np.testing.assert_allclose(info["returned_episode_return"][:, 9:], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(info["returned_episode_length"][:, 9:], 10)
    _check_statistics(traj)


def test_delegates_to_the_inner_env():
    inner, params = make("popgym::RepeatPreviousEasy")
    env = EpisodeStatistics(inner)
    assert isinstance(env, Environment)
    assert env.env is inner
    assert env.name == "RepeatPreviousEasy"
    assert env.num_actions == 4
    assert env.default_params == inner.default_params
    assert env.action_space(params).n == 4
    assert env.observation_space(params).shape == (4,)
    assert env.k == 4  # anything else falls through to the inner env
    with pytest.raises(AttributeError):
        env.not_an_attribute
    assert hash(env) == hash(env)  # static under jit

    obs, state = env.reset(jax.random.key(0), params)
    assert isinstance(state, EpisodeStatisticsState)
    assert obs.shape == (4,)
    assert state.episode_return.dtype == jnp.float32
    assert state.episode_length.dtype == jnp.int32
    for stat in (
        state.episode_return,
        state.episode_length,
        state.returned_episode_return,
        state.returned_episode_length,
    ):
        assert stat.shape == () and stat == 0
