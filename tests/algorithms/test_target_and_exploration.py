import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from memrl_eqx.algorithms import epsilon_greedy, linear_schedule, polyak_update


def test_polyak_update_mixes_float_leaves_only():
    online = eqx.nn.Linear(3, 2, key=jr.key(0))
    target = eqx.nn.Linear(3, 2, key=jr.key(1))
    mixed = polyak_update(online, target, 0.25)
    np.testing.assert_allclose(
        mixed.weight, target.weight + 0.25 * (online.weight - target.weight), rtol=1e-6
    )
    hard = polyak_update(online, target, 1.0)
    np.testing.assert_array_equal(hard.weight, online.weight)
    kept = polyak_update(online, target, 1.0, jnp.bool_(False))
    np.testing.assert_array_equal(kept.weight, target.weight)


def test_linear_schedule_and_epsilon_greedy():
    values = [float(linear_schedule(s, 1.0, 0.1, 100.0)) for s in (0, 50, 100, 500)]
    np.testing.assert_allclose(values, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    q = jnp.tile(jnp.array([0.0, 3.0, 1.0]), (10_000, 1))
    greedy = epsilon_greedy(jr.key(0), q, 0.0)
    assert bool(jnp.all(greedy == 1))
    explored = epsilon_greedy(jr.key(0), q, 0.3)
    # Greedy with probability 0.7 + 0.3 / 3 = 0.8; the others 0.1 each.
    freq = np.bincount(np.asarray(explored), minlength=3) / 10_000
    np.testing.assert_allclose(freq, [0.1, 0.8, 0.1], atol=0.02)
