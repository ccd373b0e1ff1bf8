"""Networks are checked against the environment when an algorithm is built:
each mismatch is one `ValueError` naming the network, the part, the expected
and the given size, raised before anything compiles."""

import functools
import logging
import re

import distrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

import memrl_eqx
import memrl_eqx.nn as mnn
from memrl_eqx.algorithms import DQN, PPO, PQN, SAC, SACD
from memrl_eqx.nn import heads


F = 16  # the width of every hand-made embedding, torso and head input
DISCRETE = "gymnax::MetaMaze-misc"  # observations (15,), 4 actions
CONTINUOUS = "gymnax::Pendulum-v1"  # observations (3,), actions (1,)
_OPTIMIZER = optax.adam(1e-3)


@functools.cache
def _env(env_id):
    # gymnax's MetaMaze mixes Python floats and integers when it is built.
    with jax.numpy_dtype_promotion("standard"):
        return memrl_eqx.envs.make(env_id)


def _build(algorithm, env_id, **networks):
    env, params = _env(env_id)
    return algorithm(env=env, env_params=params, optimizer=_OPTIMIZER, **networks)


class RunningSum(mnn.AbstractSequenceModel):
    """A user's torso: the sum of a linear map of the inputs since the last reset."""

    linear: eqx.nn.Linear

    def init_carry(self):
        return jnp.zeros(self.linear.out_features)

    def __call__(self, carry, xs, resets):
        def step(total, x_and_reset):
            x, reset = x_and_reset
            total = jnp.where(reset, 0.0, total) + self.linear(x)
            return total, total

        return lax.scan(step, carry, (xs, resets))


class LogitsPolicy(eqx.Module):
    """A user's policy head, declaring no `action_dim`: logits from a linear map."""

    linear: eqx.nn.Linear

    def __call__(self, x):
        return distrax.Categorical(logits=jax.vmap(self.linear)(x))


def _key(i):
    return jr.key(i)


def _gru(in_features=F, features=F):
    return mnn.RNN(mnn.GRUCell(in_features=in_features, features=features, key=_key(1)))


def _net(head, *, obs=15, extractor=None, torso=None):
    """A hand-made network: observation -> Linear(obs, F) -> torso -> head."""
    extractor = extractor or mnn.FeatureExtractor(mnn.Linear(obs, F, key=_key(0)))
    return mnn.Network(extractor, torso or _gru(), head)


def _categorical(action_dim, in_features=F):
    return heads.Categorical(
        in_features=in_features, action_dim=action_dim, key=_key(2)
    )


def _value():
    return heads.VNetwork(in_features=F, key=_key(3))


def _ppo(actor=None, critic=None, env_id=DISCRETE):
    actor = actor or _net(_categorical(4))
    critic = critic or _net(_value())
    return _build(PPO, env_id, actor=actor, critic=critic)


def _dqn(head, algorithm=DQN, **kwargs):
    return _build(algorithm, DISCRETE, q_network=_net(head, **kwargs))


def _q(action_dim=4):
    return heads.DiscreteQNetwork(in_features=F, action_dim=action_dim, key=_key(4))


def _sac_actor(action_dim=1, **kwargs):
    head = heads.SquashedGaussian(
        in_features=F, action_dim=action_dim, low=-2.0, high=2.0, key=_key(5)
    )
    return _net(head, obs=3, **kwargs)


def _sac_critic(action_dim=1, **kwargs):
    head = heads.TwinContinuousQNetwork(
        in_features=F, action_dim=action_dim, hidden=(F,), key=_key(6)
    )
    return _net(head, obs=3, **kwargs)


def _sac(actor=None, critic=None):
    actor, critic = actor or _sac_actor(), critic or _sac_critic()
    return _build(SAC, CONTINUOUS, actor=actor, critic=critic)


def _sacd(actor=None, critic=None):
    actor = actor or _net(_categorical(4))
    critic = critic or _net(
        heads.TwinDiscreteQNetwork(in_features=F, action_dim=4, key=_key(7))
    )
    return _build(SACD, DISCRETE, actor=actor, critic=critic)


def _obs_extractor(in_features):
    return mnn.FeatureExtractor(mnn.Linear(in_features, F, key=_key(8)))


# (build a mismatched algorithm, fragments its message must contain, in order:
# the algorithm, the network, the part, then the expected and the given size).
MISMATCHES = {
    # The three of issue 18.
    "issue: Categorical(action_dim=2) on 4 actions": (
        lambda: _ppo(actor=_net(_categorical(2))),
        ["PPO", "`actor`", "head", "action_dim=4", "action_dim=2"],
    ),
    "issue: observation extractor of the wrong width": (
        lambda: _ppo(actor=_net(_categorical(4), extractor=_obs_extractor(4))),
        ["PPO", "`actor`", "feature extractor", "in_features=15", "in_features=4"],
    ),
    "issue: Categorical head as the critic": (
        lambda: _ppo(critic=_net(_categorical(4))),
        ["PPO", "`critic`", "head", "value head", "`Categorical`", "Categorical"],
    ),
    "PPO critic torso of the wrong width": (
        lambda: _ppo(critic=_net(_value(), torso=_gru(in_features=8))),
        ["PPO", "`critic`", "torso", "in_features=16", "in_features=8"],
    ),
    "PPO actor head of the wrong width": (
        lambda: _ppo(actor=_net(_categorical(4, in_features=12))),
        ["PPO", "`actor`", "head", "in_features=16", "in_features=12"],
    ),
    "PPO histogram value head as the critic": (
        lambda: _ppo(critic=_net(heads.HLGaussVNetwork(in_features=F, key=_key(9)))),
        ["PPO", "`critic`", "head", "value head", "(time,)", "(time, 101)"],
    ),
    "PPO value head as the actor": (
        lambda: _ppo(actor=_net(_value())),
        ["PPO", "`actor`", "head", "policy head", "`VNetwork`", "(time,)"],
    ),
    "PPO Gaussian of 2 dimensions on 1": (
        lambda: _ppo(
            actor=_net(
                heads.Gaussian(in_features=F, action_dim=2, key=_key(10)), obs=3
            ),
            critic=_net(_value(), obs=3),
            env_id=CONTINUOUS,
        ),
        ["PPO", "`actor`", "head", "action_dim=1", "action_dim=2"],
    ),
    "PPO Categorical on continuous actions": (
        lambda: _ppo(
            actor=_net(_categorical(4), obs=3),
            critic=_net(_value(), obs=3),
            env_id=CONTINUOUS,
        ),
        ["PPO", "`actor`", "head", "heads.Gaussian", "(1,)", "`Categorical`"],
    ),
    "PPO previous action one-hot of too few actions": (
        lambda: _ppo(
            actor=_net(
                _categorical(4),
                extractor=mnn.FeatureExtractor(
                    mnn.Linear(15, F - 2, key=_key(11)), action_extractor=mnn.OneHot(2)
                ),
            )
        ),
        ["PPO", "`actor`", "feature extractor", "num_classes=4", "num_classes=2"],
    ),
    "PPO user-made policy head of 2 logits on 4 actions": (
        lambda: _ppo(actor=_net(LogitsPolicy(eqx.nn.Linear(F, 2, key=_key(12))))),
        ["PPO", "`actor`", "head", "action_dim=4", "action_dim=2"],
    ),
    "PPO user-made torso of the wrong width": (
        lambda: _ppo(
            actor=_net(
                _categorical(4), torso=RunningSum(eqx.nn.Linear(7, F, key=_key(13)))
            )
        ),
        ["PPO", "`actor`", "torso", "in_features=16", "in_features=7"],
    ),
    "DQN Q head of 2 actions on 4": (
        lambda: _dqn(_q(2)),
        ["DQN", "`q_network`", "head", "action_dim=4", "action_dim=2"],
    ),
    "DQN C51 head of 3 actions on 4": (
        lambda: _dqn(heads.C51QNetwork(in_features=F, action_dim=3, key=_key(14))),
        ["DQN", "`q_network`", "head", "action_dim=4", "action_dim=3"],
    ),
    "DQN value head as the Q-network": (
        lambda: _dqn(_value()),
        ["DQN", "`q_network`", "head", "Q head", "4 actions", "`VNetwork`"],
    ),
    "PQN observation extractor of the wrong width": (
        lambda: _dqn(_q(), algorithm=PQN, extractor=_obs_extractor(4)),
        ["PQN", "`q_network`", "feature extractor", "in_features=15", "in_features=4"],
    ),
    "PQN Q head of 5 actions on 4": (
        lambda: _dqn(_q(5), algorithm=PQN),
        ["PQN", "`q_network`", "head", "action_dim=4", "action_dim=5"],
    ),
    "SAC critic observation extractor of the wrong width": (
        lambda: _sac(critic=_sac_critic(extractor=_obs_extractor(5))),
        ["SAC", "`critic`", "feature extractor", "in_features=3", "in_features=5"],
    ),
    "SAC actor head of the wrong width": (
        lambda: _sac(
            actor=_net(
                heads.SquashedGaussian(
                    in_features=9, action_dim=1, low=-2.0, high=2.0, key=_key(15)
                ),
                obs=3,
            )
        ),
        ["SAC", "`actor`", "head", "in_features=16", "in_features=9"],
    ),
    "SAC critic torso whose outputs are too narrow for its head": (
        lambda: _sac(critic=_sac_critic(torso=_gru(features=8))),
        ["SAC", "`critic`", "head", "in_features=8", "in_features=16"],
    ),
    "SACD actor torso of the wrong width": (
        lambda: _sacd(actor=_net(_categorical(4), torso=_gru(in_features=32))),
        ["SACD", "`actor`", "torso", "in_features=16", "in_features=32"],
    ),
    "SACD critic observation extractor of the wrong width": (
        lambda: _sacd(
            critic=_net(
                heads.TwinDiscreteQNetwork(in_features=F, action_dim=4, key=_key(16)),
                extractor=_obs_extractor(3),
            )
        ),
        ["SACD", "`critic`", "feature extractor", "in_features=15", "in_features=3"],
    ),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_a_mismatch_is_one_value_error_naming_network_part_and_sizes(case):
    build, fragments = MISMATCHES[case]
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert "\n" not in message, message
    pattern = ".*".join(re.escape(f) for f in fragments)
    assert re.search(pattern, message), f"{fragments} not in order in: {message}"


# The size checks of SAC's and SACD's own (older) checks, which run first.
@pytest.mark.parametrize(
    "build, fragments",
    [
        (lambda: _sac(actor=_sac_actor(action_dim=2)), ["`actor`", "head", "1", "2"]),
        (
            lambda: _sac(critic=_sac_critic(action_dim=3)),
            ["`critic`", "head", "1", "3"],
        ),
        (lambda: _sacd(actor=_net(_categorical(2))), ["`actor`", "head", "4", "2"]),
        (
            lambda: _sacd(
                critic=_net(
                    heads.TwinDiscreteQNetwork(
                        in_features=F, action_dim=3, key=_key(17)
                    )
                )
            ),
            ["`critic`", "head", "4", "3"],
        ),
    ],
)
def test_soft_actor_critics_check_action_sizes(build, fragments):
    with pytest.raises(ValueError, match=".*".join(fragments)):
        build()


def _user_actor_critic():
    """PPO networks made of a user's modules: a torso, a policy head, and a
    feature extractor reading the previous action and reward too."""
    extractor = mnn.FeatureExtractor(
        mnn.Linear(15, F - 5, key=_key(20)),
        action_extractor=mnn.OneHot(4),
        reward_extractor=lambda r: r,
    )
    torso = RunningSum(eqx.nn.Linear(F, F, key=_key(21)))
    head = LogitsPolicy(eqx.nn.Linear(F, 4, key=_key(22)))
    return mnn.Network(extractor, torso, head), _net(_value(), torso=torso)


def _builders(env_id, builder, **kwargs):
    env, params = _env(env_id)
    networks = builder(env, params, features=F, key=_key(30), **kwargs)
    return networks if isinstance(networks, tuple) else (networks,)


CORRECT = {
    "PPO discrete (actor_critic)": lambda: _build(
        PPO,
        DISCRETE,
        **dict(zip(("actor", "critic"), _builders(DISCRETE, memrl_eqx.actor_critic))),
    ),
    "PPO continuous (actor_critic, lru)": lambda: _build(
        PPO,
        CONTINUOUS,
        **dict(
            zip(
                ("actor", "critic"),
                _builders(CONTINUOUS, memrl_eqx.actor_critic, torso="lru"),
            )
        ),
    ),
    "PPO of a user's modules": lambda: _build(
        PPO, DISCRETE, **dict(zip(("actor", "critic"), _user_actor_critic()))
    ),
    "PPO with a user's torso through actor_critic": lambda: _build(
        PPO,
        DISCRETE,
        **dict(
            zip(
                ("actor", "critic"),
                _builders(
                    DISCRETE,
                    memrl_eqx.actor_critic,
                    torso=lambda key: RunningSum(eqx.nn.Linear(F, F, key=key)),
                ),
            )
        ),
    ),
    "DQN (q_network, mlp)": lambda: _build(
        DQN,
        DISCRETE,
        q_network=_builders(DISCRETE, memrl_eqx.q_network, torso="mlp")[0],
    ),
    "DQN with a C51 head": lambda: _dqn(
        heads.C51QNetwork(in_features=F, action_dim=4, key=_key(31))
    ),
    "PQN (q_network, layer norm)": lambda: _build(
        PQN,
        DISCRETE,
        q_network=_builders(DISCRETE, memrl_eqx.q_network, layer_norm=True)[0],
    ),
    "SAC (sac_networks)": lambda: _build(
        SAC,
        CONTINUOUS,
        **dict(zip(("actor", "critic"), _builders(CONTINUOUS, memrl_eqx.sac_networks))),
    ),
    "SACD (sac_networks)": lambda: _build(
        SACD,
        DISCRETE,
        **dict(zip(("actor", "critic"), _builders(DISCRETE, memrl_eqx.sac_networks))),
    ),
    "SAC and SACD hand-made": lambda: (_sac(), _sacd()),
}


@pytest.mark.parametrize("case", sorted(CORRECT))
def test_correct_networks_pass(case):
    CORRECT[case]()


def test_nothing_compiles_while_checking():
    env, params = _env(DISCRETE)
    actor, critic = memrl_eqx.actor_critic(env, params, features=F, key=_key(40))
    bad_actor = _net(_categorical(2))
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    compiled = lambda: [m for m in records if "ompil" in m]
    try:
        with jax.log_compiles():
            _build(PPO, DISCRETE, actor=actor, critic=critic)
            with pytest.raises(ValueError, match="action_dim=4"):
                _build(PPO, DISCRETE, actor=bad_actor, critic=critic)
            assert compiled() == []
            # The log does record compilation (so the test can fail).
            jax.jit(lambda x: x * 3 + 1)(np.float32(2.0))
            assert compiled()
    finally:
        logger.removeHandler(handler)
