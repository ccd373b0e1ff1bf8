"""Every torso the command line offers builds an agent that runs."""

import gymnax
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx._agents import (
    actor_critic,
    make_torso,
    q_network,
    sac_networks,
    TORSOS,
)


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


def _gru(key, in_features=8, features=8):
    return mnn.RNN(mnn.GRUCell(in_features=in_features, features=features, key=key))


@pytest.mark.parametrize("builder", [actor_critic, q_network, sac_networks])
def test_builders_take_a_torso_module_or_a_function_of_a_key(builder):
    env, params = gymnax.make("CartPole-v1")
    module = _gru(jr.key(1))
    networks = builder(env, params, torso=module, features=8, key=jr.key(0))
    networks = networks if isinstance(networks, tuple) else (networks,)
    for net in networks:  # the module itself, its parameters untouched
        assert (net.torso.cell.weight_ih == module.cell.weight_ih).all()
    calls = []
    factory = lambda key: calls.append(key) or _gru(key)
    networks = builder(env, params, torso=factory, features=8, key=jr.key(0))
    networks = networks if isinstance(networks, tuple) else (networks,)
    assert len(calls) == len(networks)  # one torso per network, each its own key
    if len(networks) == 2:
        a, b = (net.torso.cell.weight_ih for net in networks)
        assert not (a == b).all()


@pytest.mark.parametrize(
    "torso, message",
    [
        (
            _gru(jr.key(0), in_features=5),
            "actor_critic: the torso.*features=8.*in_features=5",
        ),
        (_gru(jr.key(0), features=3), "actor_critic: the torso's outputs.*8.*\\(3,\\)"),
    ],
)
def test_a_torso_module_of_the_wrong_width_is_a_value_error(torso, message):
    env, params = gymnax.make("CartPole-v1")
    with pytest.raises(ValueError, match=message):
        actor_critic(env, params, torso=torso, features=8, key=jr.key(0))


def test_a_torso_that_is_no_sequence_model_is_a_type_error():
    env, params = gymnax.make("CartPole-v1")
    with pytest.raises(TypeError, match="q_network: `torso` must be"):
        q_network(env, params, torso=lambda key: 3, features=8, key=jr.key(0))
