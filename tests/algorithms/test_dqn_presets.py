import jax.random as jr
import numpy as np
import optax
import pytest

import memrl_eqx
from memrl_eqx.algorithms import DQN, DQNConfig, DRQN, R2D2

from ..helpers import tree_allclose


SMALL = dict(
    num_envs=2,
    rollout_length=2,
    buffer_capacity=32,
    batch_size=4,
    sequence_length=4,
    n_step=2,
    target_update_period=2,
)


def _parts():
    env, params = memrl_eqx.envs.make("popgym::RepeatPreviousEasy")
    q = memrl_eqx.q_network(env, params, torso="gru", features=8, key=jr.key(0))
    return dict(env=env, env_params=params, q_network=q, optimizer=optax.adam(1e-3))


def test_the_names_are_dqn_with_the_presets_and_overrides():
    parts = _parts()
    for name, preset in ((R2D2, DQNConfig.r2d2), (DRQN, DQNConfig.drqn)):
        algo = name(**parts)
        assert type(algo) is DQN and algo.config == preset()
        algo = name(**parts, num_envs=3, gamma=0.9)
        assert algo.config == preset(num_envs=3, gamma=0.9)
        assert algo.config.num_envs == 3 and algo.config.gamma == 0.9
    # The preset fields that make each what it is.
    r2d2 = R2D2(**parts).config
    assert r2d2.burn_in_length > 0 and r2d2.n_step > 1
    assert r2d2.prioritised and r2d2.value_rescaling and r2d2.double
    drqn = DRQN(**parts).config
    assert drqn.sequence_length > 1 and drqn.burn_in_length == 0
    assert drqn.n_step == 1 and not drqn.prioritised


def test_a_named_run_is_the_dqn_run():
    parts = _parts()
    named = R2D2(**parts, **SMALL, burn_in_length=2)
    plain = DQN(config=DQNConfig.r2d2(**SMALL, burn_in_length=2), **parts)
    assert named == plain
    a = named.warmup(named.init(jr.key(1)), 16)
    b = plain.warmup(plain.init(jr.key(1)), 16)
    a, metrics_a = named.train(a, 8)
    b, metrics_b = plain.train(b, 8)
    assert tree_allclose(a, b)
    for key, value in metrics_a.items():  # NaN where no episode ended
        np.testing.assert_allclose(value, metrics_b[key], rtol=1e-6)


def test_bad_overrides_are_named():
    parts = _parts()
    with pytest.raises(TypeError, match="sequence_lenght, which are not DQNConfig"):
        R2D2(**parts, sequence_lenght=8)
    with pytest.raises(TypeError, match="not `config`"):
        DRQN(**parts, config=DQNConfig())
    with pytest.raises(ValueError, match="gamma"):
        DRQN(**parts, gamma=2.0)
