import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import BSuiteRegret, BSuiteRegretState, make, ScaleReward

from ._helpers import constant_policy, random_policy, rollout


def _deep_sea_oracle(env, key, obs, state, arg):
    del env, key, obs, arg
    s = state.env_state
    return s.action_mapping[s.row, s.column]


def _run(name, policy, arg=None, num_envs=4, num_steps=60, key=0, **params):
    env, env_params = make(f"gymnax::{name}-bsuite")
    env = BSuiteRegret(env)
    env_params = env_params.replace(**params)
    with jax.numpy_dtype_promotion("standard"):  # gymnax's bsuite mixes dtypes
        traj = rollout(
            env,
            env_params,
            jax.random.key(key),
            arg,
            policy=policy,
            num_envs=num_envs,
            num_steps=num_steps,
        )
    traj = jax.tree.map(np.asarray, traj)
    info = traj["info"]
    done = info["terminated"] | info["truncated"]
    assert done.any(axis=1).all()
    _check_bookkeeping(traj["reward"], done, info, traj["state"])
    return traj, done


def _check_bookkeeping(reward, done, info, state):
    """`returned_episode_regret` holds the last ended episode's regret between
    ends; `total_regret` sums them."""
    returned, total = info["returned_episode_regret"], info["total_regret"]
    for e in range(done.shape[0]):
        last, running = 0.0, 0.0
        for t in range(done.shape[1]):
            if done[e, t]:
                last = returned[e, t]
                running += last
            assert returned[e, t] == last
            assert total[e, t] == pytest.approx(running, abs=1e-4)
    assert isinstance(state, BSuiteRegretState)


def _episode_returns(reward, done):
    """The return of the episode ending at each step where one ends."""
    returns = np.zeros(reward.shape)
    for e in range(reward.shape[0]):
        g = 0.0
        for t in range(reward.shape[1]):
            g += reward[e, t]
            returns[e, t] = g
            if done[e, t]:
                g = 0.0
    return returns


def test_memory_chain_regret_is_two_per_wrong_recall():
    traj, done = _run("MemoryChain", random_policy)
    regret = traj["info"]["returned_episode_regret"]
    # From the hidden state: the recall at the last step against the context bit.
    s = traj["state"].env_state
    bit = np.take_along_axis(s.context, s.query[..., None], axis=-1)[..., 0]
    wrong = traj["action"] != bit
    np.testing.assert_array_equal(regret[done], 2.0 * wrong[done])
    assert wrong[done].any() and (~wrong[done]).any()


def test_umbrella_chain_counts_the_final_reward_only():
    traj, done = _run("UmbrellaChain", random_policy, num_steps=80)
    regret = traj["info"]["returned_episode_regret"][done]
    # From the hidden state: the umbrella taken at the first step of the episode
    # against the one needed.
    s = traj["state"].env_state
    first = np.zeros_like(done)
    first[:, 0] = True
    first[:, 1:] = done[:, :-1]
    expected = []
    for e in range(done.shape[0]):
        for t in np.flatnonzero(done[e]):
            start = np.flatnonzero(first[e, : t + 1])[-1]
            expected.append(2.0 * (traj["action"][e, start] != s.need_umbrella[e, t]))
    np.testing.assert_array_equal(regret, expected)
    # The distractor rewards are in the return but not in the regret.
    returns = _episode_returns(traj["reward"], done)[done]
    assert not np.allclose(regret, 1.0 - returns)


def test_catch_and_bandit_regret_is_the_optimal_minus_the_return():
    traj, done = _run("Catch", random_policy, num_steps=50)
    regret = traj["info"]["returned_episode_regret"][done]
    returns = _episode_returns(traj["reward"], done)[done]
    np.testing.assert_array_equal(regret, 1.0 - returns)
    assert set(regret.tolist()) == {0.0, 2.0}

    traj, done = _run("SimpleBandit", random_policy, num_steps=20)
    assert done.all()  # one-step episodes
    s = traj["state"].env_state
    chosen = np.take_along_axis(s.rewards, traj["action"][..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(
        traj["info"]["returned_episode_regret"], 1.0 - chosen, atol=1e-6
    )


def test_discounting_chain_regret_against_the_bonus_chain():
    # Chain 0 (reward at step 1) carries the 10% bonus; chain 3 pays 1 at step 30.
    for chain, expected in ((0, 0.0), (3, 0.1)):
        traj, done = _run("DiscountingChain", constant_policy, jnp.int32(chain), 2, 110)
        regret = traj["info"]["returned_episode_regret"][done]
        np.testing.assert_allclose(regret, expected, atol=1e-6)


def test_deep_sea_regret():
    traj, done = _run("DeepSea", _deep_sea_oracle, num_steps=40)
    # The optimal path: the treasure less the move costs is the optimal return.
    np.testing.assert_allclose(
        traj["info"]["returned_episode_regret"][done], 0.0, atol=1e-6
    )
    traj, done = _run("DeepSea", random_policy, num_steps=80)
    regret = traj["info"]["returned_episode_regret"][done]
    returns = _episode_returns(traj["reward"], done)[done]
    np.testing.assert_allclose(regret, 0.99 - returns, atol=1e-5)
    # An episode with regret is one gymnax counts as bad (it left the diagonal):
    # its cumulative count, kept across resets, grows at the next step.
    bad = np.diff(traj["state"].env_state.total_bad_episodes, axis=1) > 0
    ended = done[:, :-1]
    regret = traj["info"]["returned_episode_regret"][:, :-1][ended]
    np.testing.assert_array_equal(regret > 0.5, bad[ended])
    assert bad[ended].any() and not bad[ended].all()

    # The windy variant: the oracle's right moves fail with probability 1/8 and
    # the chain's end pays N(0, 1) noise. The regret leaves the noise out: it is
    # the expected optimum less 0.99 (treasure) or less -0.01 (missed), whatever
    # the noisy return.
    traj, done = _run(
        "DeepSea", _deep_sea_oracle, num_steps=64, key=1, deterministic=False
    )
    regret = traj["info"]["returned_episode_regret"][done]
    optimal = (1 - 1 / 8) ** 7 - 0.01
    found = np.isclose(regret, optimal - 0.99, atol=1e-5)
    missed = np.isclose(regret, optimal + 0.01, atol=1e-5)
    assert (found | missed).all() and found.any() and missed.any()
    returns = _episode_returns(traj["reward"], done)[done]
    assert not np.isclose(returns, 0.99, atol=1e-3).all()  # the noise is there


def test_errors():
    env, _ = make("gymnax::CartPole-v1")
    with pytest.raises(ValueError, match="bsuite environments"):
        BSuiteRegret(env)
    catch, _ = make("gymnax::Catch-bsuite")
    with pytest.raises(ValueError, match="not wrapped"):
        BSuiteRegret(ScaleReward(catch, 2.0))
    assert BSuiteRegret(catch) == BSuiteRegret(catch)
