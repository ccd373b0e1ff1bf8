"""An algorithm and its networks from a run's configuration.

The environment and the optimiser of a configuration are made once per process
(`functools.cache`): they are static parts of the algorithm, compared by
identity, so runs of one configuration in one process (seeds of a sweep, a
resumed run, an evaluation) share their compilations.
"""

import functools
import math
from typing import Any

from jaxtyping import PRNGKeyArray


@functools.cache
def make_env(env_id: str):
    """`memrl_eqx.envs.make(env_id)`, once per process."""
    from ..envs import make

    return make(env_id)


@functools.cache
def _optimizer(algorithm: str, learning_rate: float):
    import optax

    if algorithm == "ppo":
        return optax.chain(
            optax.clip_by_global_norm(0.5), optax.adam(learning_rate, eps=1e-5)
        )
    if algorithm in ("dqn", "r2d2"):
        return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))
    if algorithm == "pqn":
        return optax.chain(optax.clip_by_global_norm(10.0), optax.radam(learning_rate))
    return optax.adam(learning_rate)


def build_algorithm(config: dict[str, Any], env, env_params, key: PRNGKeyArray):
    """The algorithm `config["algorithm"]` with its default configuration, the
    run's options, and networks with the torso `config["torso"]`.

    Returns `(algo, steps_per_update, warmup_steps)`; a replay method first fills
    its replay with one batch of windows of random actions.
    """
    from .. import algorithms as A
    from .._agents import actor_critic, q_network, sac_networks

    nets = dict(torso=config["torso"], features=config["features"], key=key)
    common = dict(env=env, env_params=env_params)
    name, n = config["algorithm"], config["num_envs"]
    optimizer = _optimizer(name, config["learning_rate"])
    if name == "ppo":
        actor, critic = actor_critic(env, env_params, **nets)
        # Minibatches are whole environment trajectories: at most 4, dividing n.
        ppo = A.PPOConfig(num_envs=n, num_minibatches=math.gcd(4, n))
        algo = A.PPO(
            config=ppo, actor=actor, critic=critic, optimizer=optimizer, **common
        )
        return algo, ppo.batch_size, 0
    if name in ("dqn", "r2d2"):
        dqn = (
            A.DQNConfig(num_envs=n, n_step=3)
            if name == "dqn"
            else A.DQNConfig.r2d2(num_envs=n)
        )
        algo = A.DQN(
            config=dqn,
            q_network=q_network(env, env_params, **nets),
            optimizer=optimizer,
            **common,
        )
        return algo, dqn.steps_per_update, dqn.batch_size * dqn.window_length
    if name == "pqn":
        pqn = A.PQNConfig(num_envs=n, num_minibatches=math.gcd(4, n))
        algo = A.PQN(
            config=pqn,
            q_network=q_network(env, env_params, layer_norm=True, **nets),
            optimizer=optimizer,
            **common,
        )
        return algo, pqn.batch_size, 0
    actor, critic = sac_networks(env, env_params, **nets)
    sac = (A.SACConfig if name == "sac" else A.SACDConfig)(num_envs=n)
    algo = (A.SAC if name == "sac" else A.SACD)(
        config=sac, actor=actor, critic=critic, optimizer=optimizer, **common
    )
    return algo, sac.steps_per_update, sac.batch_size * sac.window_length
