import jax
import numpy as np
import pytest

from memrl_eqx.envs import PeriodicObservation, PeriodicObservationState

from ._helpers import random_policy, rollout
from ._recording import cartpole, cartpole_obs, episode_steps


PERIOD = 3
FILL = 9.0


def test_against_a_hand_loop_with_the_counter_reset_at_every_episode_start():
    inner, params = cartpole()
    env = PeriodicObservation(inner, PERIOD, fill=FILL)
    traj = rollout(
        env, params, jax.random.key(1), policy=random_policy, num_envs=6, num_steps=64
    )
    traj = jax.tree.map(np.asarray, traj)
    info = traj["info"]
    done = info["terminated"] | info["truncated"]
    assert done.sum() > 12 and info["truncated"].any()
    raw = cartpole_obs(traj["state"].env_state)
    np.testing.assert_allclose(raw[:, 1:], info["raw_obs"][:, :-1], atol=1e-6)
    raw[:, 1:] = info["raw_obs"][:, :-1]

    # Step k of an episode is shown when k % period == 0, whenever the episode
    # started (the counter restarts with it).
    k = episode_steps(done)
    assert (k[done] % PERIOD != 0).any()  # episodes end off the period
    shown = k % PERIOD == 0
    np.testing.assert_array_equal(traj["obs"][shown], raw[shown])
    np.testing.assert_array_equal(traj["obs"][~shown], FILL)
    assert isinstance(traj["state"], PeriodicObservationState)
    np.testing.assert_array_equal(traj["state"].time, k)
    # The final observation is shown as the next step of its episode would be.
    final = info["final_observation"]
    final_shown = done & ((k + 1) % PERIOD == 0)
    np.testing.assert_array_equal(final[final_shown], info["raw_final"][final_shown])
    np.testing.assert_array_equal(final[done & ~final_shown], FILL)
    assert final_shown.any() and (done & ~final_shown).any()
    not_done = ~done[:, :-1]
    np.testing.assert_array_equal(final[:, :-1][not_done], traj["obs"][:, 1:][not_done])


def test_spaces_and_errors():
    inner, params = cartpole()
    box = inner.observation_space(params)
    space = PeriodicObservation(inner, 2, fill=-10.0).observation_space(params)
    np.testing.assert_array_equal(space.low, np.minimum(box.low, -10.0))
    np.testing.assert_array_equal(space.high, box.high)
    # Period 1 shows everything: the wrapped environment's stream.
    env = PeriodicObservation(inner, 1)
    obs, state = env.reset(jax.random.key(0), params)
    raw, _ = inner.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, raw)
    assert PeriodicObservation(inner, 2) == PeriodicObservation(inner, 2)
    assert PeriodicObservation(inner, 2) != PeriodicObservation(inner, 2, fill=1.0)
    for period in (0, -2, False):
        with pytest.raises(ValueError, match="period must be a positive int"):
            PeriodicObservation(inner, period)
