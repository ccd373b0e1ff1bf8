"""Every torso the command line offers builds an agent that runs."""

import gymnax
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx._agents import actor_critic, make_torso, TORSOS


@pytest.mark.parametrize("name", sorted(TORSOS))
def test_every_torso_is_a_sequence_model_of_the_right_width(name):
    torso = make_torso(name, in_features=8, features=16, key=jr.key(0))
    assert isinstance(torso, mnn.AbstractSequenceModel)
    # Traced, not compiled: shapes only.
    carry, ys = jax.eval_shape(
        torso, torso.init_carry(), jnp.zeros((5, 8)), jnp.zeros(5, bool)
    )
    assert ys.shape == (5, 16)


def test_actor_critic_heads():
    env, params = gymnax.make("CartPole-v1")
    actor, critic = actor_critic(env, params, torso="mlp", features=8, key=jr.key(0))
    timestep = mnn.Timestep(
        obs=jnp.zeros((3, 4)),
        prev_action=jnp.zeros(3, jnp.int32),
        prev_reward=jnp.zeros(3),
        reset=jnp.ones(3, bool),
    )
    _, dist = actor(actor.init_carry(), timestep)
    _, values = critic(critic.init_carry(), timestep)
    assert dist.logits.shape == (3, 2) and values.shape == (3,)


def test_unknown_torso_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of: .*gru"):
        make_torso("transformer", in_features=2, features=2, key=jr.key(0))
