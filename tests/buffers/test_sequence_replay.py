import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from memrl_eqx.buffers import SequenceReplay


def _filled(replay, steps, offset=0):
    """A replay whose env `e` stored the values `1000 e + t` for t in order."""
    state = replay.init(jnp.zeros((), jnp.int32))
    values = 1000 * jnp.arange(replay.num_envs)[:, None] + jnp.arange(steps)[None, :]
    for chunk in jnp.split(values.astype(jnp.int32) + offset, steps // 4, axis=1):
        state = replay.add(state, chunk)
    return state


def test_windows_are_consecutive_steps_of_one_env_and_never_cross_the_head():
    replay = SequenceReplay(
        num_envs=3, capacity=10, sample_batch_size=512, sequence_length=4
    )
    # 16 steps into 10 slots: the oldest stored step is t = 6.
    state = _filled(replay, 16)
    sample = replay.sample(state, jr.key(0))
    data = np.asarray(sample.data)
    assert data.shape == (512, 4)
    np.testing.assert_array_equal(np.diff(data, axis=1), 1)  # consecutive
    t0 = data[:, 0] % 1000
    assert t0.min() == 6 and t0.max() == 16 - 4  # every valid start, no other
    assert len(np.unique(t0)) == 16 - 4 - 6 + 1
    np.testing.assert_array_equal(data[:, 0] // 1000, np.asarray(sample.rows))
    np.testing.assert_allclose(sample.weights, 1.0)


def test_start_mask_and_can_sample():
    replay = SequenceReplay(
        num_envs=2, capacity=16, sample_batch_size=64, sequence_length=3
    )
    state = replay.init(jnp.zeros((), jnp.int32))
    assert not bool(replay.can_sample(state))
    state = _filled(replay, 8)
    mask = jnp.zeros((2, 16), bool).at[1, 2].set(True)
    sample = replay.sample(state, jr.key(0), mask)
    np.testing.assert_array_equal(sample.data[:, 0], 1002)
    assert not bool(replay.can_sample(state, jnp.zeros((2, 16), bool)))


def test_prioritised_sampling_follows_priorities_and_weights_correct_it():
    replay = SequenceReplay(
        num_envs=1,
        capacity=8,
        sample_batch_size=20_000,
        sequence_length=1,
        prioritised=True,
        priority_exponent=1.0,
    )
    state = _filled(replay, 8)
    assert float(state.max_priority) == 1.0
    state = replay.set_priorities(
        state, jnp.zeros(2, jnp.int32), jnp.array([0, 1]), jnp.array([7.0, 0.0])
    )
    assert float(state.max_priority) == 7.0
    sample = replay.sample(state, jr.key(1), importance_exponent=1.0)
    counts = np.bincount(np.asarray(sample.starts), minlength=8) / 20_000
    expected = np.array([7, 0, 1, 1, 1, 1, 1, 1]) / 13
    np.testing.assert_allclose(counts, expected, atol=0.01)
    # Importance weights (N P)^-beta / max: the frequent start weighs 1/7.
    w = {int(s): float(w) for s, w in zip(sample.starts, sample.weights)}
    np.testing.assert_allclose(w[0], 1 / 7, rtol=1e-5)
    np.testing.assert_allclose(w[2], 1.0, rtol=1e-5)
    # New steps get the maximum priority.
    state = replay.add(state, jnp.full((1, 2), 5, jnp.int32))
    np.testing.assert_allclose(state.priorities[0, :2], 7.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`capacity` must be a positive integer"):
        SequenceReplay(num_envs=1, capacity=0, sample_batch_size=1, sequence_length=1)
    with pytest.raises(ValueError, match="must not exceed `capacity`"):
        SequenceReplay(num_envs=1, capacity=4, sample_batch_size=1, sequence_length=5)
    replay = SequenceReplay(
        num_envs=1, capacity=4, sample_batch_size=1, sequence_length=1
    )
    state = replay.init(jnp.zeros((), jnp.int32))
    with pytest.raises(ValueError, match="exceed the `capacity`"):
        replay.add(state, jnp.zeros((1, 5), jnp.int32))
