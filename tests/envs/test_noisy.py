import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import make, NoisyObservation

from ._helpers import random_policy, rollout
from ._recording import cartpole, cartpole_obs


STD = 0.5
MASK = [0, 2]


def _rollout(env, params, key):
    traj = rollout(env, params, key, policy=random_policy, num_envs=8, num_steps=64)
    return jax.tree.map(np.asarray, traj)


def test_noise_against_the_raw_stream():
    inner, params = cartpole()
    env = NoisyObservation(inner, STD, mask=MASK)
    traj = _rollout(env, params, jax.random.key(2))
    info = traj["info"]
    done = info["terminated"] | info["truncated"]
    assert done.sum() > 16
    raw = cartpole_obs(traj["state"])
    np.testing.assert_allclose(raw[:, 1:], info["raw_obs"][:, :-1], atol=1e-6)
    raw[:, 1:] = info["raw_obs"][:, :-1]
    obs = traj["obs"]
    assert obs.dtype == np.float32

    # Unmasked entries are the raw ones; masked ones carry N(0, STD^2) noise,
    # independent across entries, steps and environments.
    np.testing.assert_allclose(obs[..., [1, 3]], raw[..., [1, 3]], atol=1e-6)
    noise = (obs - raw)[..., MASK].reshape(-1, 2)
    n = noise.shape[0]
    assert np.abs(noise.mean(axis=0)).max() < 4 * STD / np.sqrt(n)
    assert np.abs(noise.std(axis=0) / STD - 1).max() < 0.1
    assert abs(np.corrcoef(noise.T)[0, 1]) < 0.1
    steps = (obs - raw)[..., 0]
    assert abs(np.corrcoef(steps[:, 1:].ravel(), steps[:, :-1].ravel())[0, 1]) < 0.15
    assert len(np.unique(noise)) == noise.size  # no draw repeats

    # info["final_observation"]: the returned observation where no episode ended;
    # where one did, the raw final observation with a draw of its own.
    final = info["final_observation"]
    not_done = ~done[:, :-1]
    np.testing.assert_array_equal(final[:, :-1][not_done], obs[:, 1:][not_done])
    final_noise = (final - info["raw_final"])[done]
    np.testing.assert_allclose(final_noise[:, [1, 3]], 0.0, atol=1e-6)
    assert np.abs(final_noise[:, MASK]).max() < 5 * STD
    # ... not the draw of the next episode's first observation at that step.
    ended = done[:, :-1]
    final_draw = (final - info["raw_final"])[:, :-1][ended][:, 0]
    next_draw = (obs[:, 1:] - raw[:, 1:])[ended][:, 0]
    assert not np.isclose(final_draw, next_draw).any()


def test_noise_is_a_function_of_the_key():
    inner, params = cartpole()
    env = NoisyObservation(inner, STD)
    a = _rollout(env, params, jax.random.key(3))
    b = _rollout(env, params, jax.random.key(3))
    np.testing.assert_array_equal(a["obs"], b["obs"])
    # The same state and action stepped with two keys: CartPole is deterministic,
    # so the raw observations agree and only the noise differs.
    obs, state = env.reset(jax.random.key(0), params)
    again, _ = env.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, again)
    one = env.step(jax.random.key(1), state, 1, params)
    two = env.step(jax.random.key(2), state, 1, params)
    np.testing.assert_array_equal(one[1].x, two[1].x)  # the same raw state
    assert (one[0] != two[0]).all()
    # The wrapped environment sees the keys it would see unwrapped.
    raw_one = inner.step(jax.random.key(1), state, 1, params)
    np.testing.assert_array_equal(raw_one[0], one[-1]["raw_obs"])


def test_spaces_pytrees_and_errors():
    inner, params = cartpole()
    box = inner.observation_space(params)
    space = NoisyObservation(
        inner, 0.1, mask=[True, False, False, True]
    ).observation_space(params)
    assert space.dtype == np.float32 and space.shape == (4,)
    np.testing.assert_array_equal(space.low[[0, 3]], -np.inf)
    np.testing.assert_array_equal(space.low[[1, 2]], np.asarray(box.low)[[1, 2]])
    assert np.isinf(NoisyObservation(inner, 0.1).observation_space(params).high).all()
    # Integer image observations become noisy float32 images.
    minatar, mparams = make("gymnax::Breakout-MinAtar")
    env = NoisyObservation(minatar, 0.1)
    assert env.observation_space(mparams).dtype == np.float32
    obs, _ = env.reset(jax.random.key(0), mparams)
    assert obs.shape == (10, 10, 4) and obs.dtype == jnp.float32
    assert NoisyObservation(inner, 0.1, [0]) == NoisyObservation(
        inner, 0.1, [True] + [False] * 3
    )
    assert NoisyObservation(inner, 0.1) != NoisyObservation(inner, 0.2)
    for std in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="std must be"):
            NoisyObservation(inner, std)
    with pytest.raises(ValueError, match=r"indices in \[0, 4\)"):
        NoisyObservation(inner, 0.1, mask=[4])
    with pytest.raises(ValueError, match="Box spaces"):
        NoisyObservation(_discrete_env(), 0.1)


def _discrete_env():
    from gymnax.environments import spaces

    from memrl_eqx.envs import AbstractWrapper

    class DiscreteObs(AbstractWrapper):
        def observation_space(self, params=None):
            return spaces.Discrete(3)

    return DiscreteObs(make("gymnax::CartPole-v1")[0])
