"""A run's algorithm, optimiser and seeds from its resolved configuration.

A resolved configuration is what `config.json` holds: `options` (the command's
own), `config` (every field of the algorithm's config class) and `optimizer`
(see `_options.py`). The environment and the optimiser are made once per process
(`functools.cache`): they are static parts of the algorithm, compared by
identity, so runs of one configuration in one process (a resumed run, an
evaluation) share their compilations.

Every run trains its seeds vmapped: seed `i` of a run with `seed = s` is built
from the key `jr.key(s + i)` (split into network, initialisation and
evaluation keys), and the seeds' algorithms are stacked along a leading axis
(`memrl_eqx.stack`), so one compiled call trains them all.
"""

import dataclasses
import functools
import math
from typing import Any, NamedTuple

from ._options import ON_POLICY, OptionError


@functools.cache
def make_env(env_id: str):
    """`memrl_eqx.envs.make(env_id)`, once per process."""
    from ..envs import make

    return make(env_id)


def config_class(algorithm: str):
    """The constructor of the algorithm's config: a class, or a preset."""
    from .. import algorithms as A

    return {
        "ppo": A.PPOConfig,
        "dqn": A.DQNConfig,
        "r2d2": A.DQNConfig.r2d2,
        "pqn": A.PQNConfig,
        "sac": A.SACConfig,
        "sacd": A.SACDConfig,
        "ippo": A.IPPOConfig,
        "mappo": A.MAPPOConfig,
        "stream_ac": A.StreamACConfig,
    }[algorithm]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return repr(value)


def make_config(algorithm: str, fields: dict[str, Any]):
    """`(config, every field's value)`: the algorithm's config with `fields`
    given; a value the config class rejects is an `OptionError` with its
    message."""
    try:
        config = config_class(algorithm)(**fields)
    except (TypeError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise OptionError(f"config: {message}") from None
    values = {
        f.name: _jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)
    }
    return config, values


def steps_per_update(config) -> int:
    """Environment steps of one update of every environment."""
    if hasattr(config, "steps_per_update"):  # replay methods
        return config.steps_per_update
    return config.num_envs * config.num_steps


def optimizer_steps_per_update(config) -> int:
    """Gradient steps (optimiser updates) of one update."""
    if hasattr(config, "gradient_steps"):
        return config.gradient_steps
    if not hasattr(config, "update_epochs"):  # a streaming method: every step
        return steps_per_update(config)
    return config.update_epochs * config.num_minibatches


def default_warmup(algorithm: str, config) -> int:
    """A replay method's warm-up: one batch of windows of random actions."""
    if algorithm in ON_POLICY:
        return 0
    return config.batch_size * config.window_length


def _frozen(spec: dict[str, Any]) -> tuple:
    return tuple(sorted(spec.items()))


@functools.cache
def _optimizer(frozen: tuple):
    import optax

    spec = dict(frozen)
    lr = spec["learning_rate"]
    if spec["schedule"] == "linear":
        lr = optax.linear_schedule(lr, 0.0, spec["decay_steps"])
    elif spec["schedule"] == "cosine":
        lr = optax.cosine_decay_schedule(lr, spec["decay_steps"])
    eps = spec["eps"]
    kind = spec["kind"]
    if kind == "adam":
        opt = optax.adam(lr, eps=eps)
    elif kind == "adamw":
        opt = optax.adamw(lr, eps=eps, weight_decay=spec["weight_decay"])
    elif kind == "radam":
        opt = optax.radam(lr, eps=eps)
    elif kind == "rmsprop":
        opt = optax.rmsprop(lr, eps=eps)
    else:
        opt = optax.sgd(lr)
    if spec["max_grad_norm"] > 0:
        opt = optax.chain(optax.clip_by_global_norm(spec["max_grad_norm"]), opt)
    return opt


def make_optimizer(spec: dict[str, Any]):
    """The optax optimiser an `optimizer` spec describes (`max_grad_norm` > 0
    clips the global gradient norm first; a `linear` or `cosine` schedule decays
    the learning rate to 0 over `decay_steps` optimiser steps)."""
    return _optimizer(_frozen(spec))


def build_algorithm(resolved: dict[str, Any], env, env_params, key):
    """The algorithm of a resolved configuration, with networks from `key`."""
    from .. import algorithms as A
    from .._agents import actor_critic, q_network, sac_networks

    options = resolved["options"]
    name = options["algorithm"]
    config, _ = make_config(name, resolved["config"])
    nets = dict(torso=options["torso"], features=options["features"], key=key)
    if name == "stream_ac":  # no optimiser: ObGD's step sizes are the config's
        actor, critic = A.stream_actor_critic(env, env_params, **nets)
        return A.StreamAC(
            config=config, env=env, env_params=env_params, actor=actor, critic=critic
        )
    common = dict(
        config=config,
        env=env,
        env_params=env_params,
        optimizer=make_optimizer(resolved["optimizer"]),
    )
    if name == "ppo":
        actor, critic = actor_critic(env, env_params, **nets)
        return A.PPO(actor=actor, critic=critic, **common)
    if name in ("ippo", "mappo"):
        cls = A.IPPO if name == "ippo" else A.MAPPO
        shared = config.share_parameters
        actor, critic = cls.networks(env, env_params, share_parameters=shared, **nets)
        return cls(actor=actor, critic=critic, **common)
    if name in ("dqn", "r2d2"):
        return A.DQN(q_network=q_network(env, env_params, **nets), **common)
    if name == "pqn":
        q = q_network(env, env_params, layer_norm=True, **nets)
        return A.PQN(q_network=q, **common)
    actor, critic = sac_networks(env, env_params, **nets)
    return (A.SAC if name == "sac" else A.SACD)(actor=actor, critic=critic, **common)


class Seeds(NamedTuple):
    """A run's seeds: their stacked algorithm and keys (leading axis: seed)."""

    seeds: list[int]
    algo: Any  # the seeds' algorithms, stacked
    init_keys: Any
    eval_keys: Any
    steps_per_update: int


def build_seeds(resolved: dict[str, Any]) -> Seeds:
    """The stacked algorithms and keys of every seed of a resolved run."""
    import jax.numpy as jnp
    import jax.random as jr

    from .._stack import stack

    options = resolved["options"]
    env, env_params = make_env(options["env"])
    seeds = [options["seed"] + i for i in range(options["seeds"])]
    keys = [jr.split(jr.key(seed), 3) for seed in seeds]
    algos = [build_algorithm(resolved, env, env_params, k[0]) for k in keys]
    return Seeds(
        seeds=seeds,
        algo=stack(algos),
        init_keys=jnp.stack([k[1] for k in keys]),
        eval_keys=jnp.stack([k[2] for k in keys]),
        steps_per_update=steps_per_update(algos[0].config),
    )


def plan(resolved: dict[str, Any]) -> dict[str, int]:
    """Updates of the whole run, of a log chunk, and the warm-up's steps."""
    options = resolved["options"]
    config, _ = make_config(options["algorithm"], resolved["config"])
    per_update = steps_per_update(config)
    warmup = options["warmup_steps"]
    if warmup is None:
        warmup = default_warmup(options["algorithm"], config)
    elif options["algorithm"] in ON_POLICY:
        raise OptionError(
            f"warmup_steps: {options['algorithm']} learns on-policy and has no "
            "warm-up (only the replay methods dqn, r2d2, sac and sacd)"
        )
    return dict(
        steps_per_update=per_update,
        total_updates=math.ceil(options["total_steps"] / per_update),
        chunk_updates=max(1, options["log_every"] // per_update),
        warmup_steps=math.ceil(warmup / per_update) * per_update if warmup else 0,
        optimizer_steps=optimizer_steps_per_update(config),
    )


# ------------------------------------------------------------ vmapped calls
@functools.cache
def _calls():
    import equinox as eqx

    @eqx.filter_jit
    def init(algo, keys, warmup: int):
        def one(a, key):
            state = a.init(key)
            return a.warmup(state, warmup) if warmup else state

        return eqx.filter_vmap(one)(algo, keys)

    @eqx.filter_jit
    def train(algo, states, steps: int):
        return eqx.filter_vmap(lambda a, s: a.train(s, steps))(algo, states)

    @eqx.filter_jit
    def evaluate(algo, states, keys, episodes: int):
        return eqx.filter_vmap(lambda a, s, k: a.evaluate(s, k, episodes)["return"])(
            algo, states, keys
        )

    return init, train, evaluate


def init_states(seeds: Seeds, warmup: int):
    """Every seed's initial state, after `warmup` steps of random actions."""
    return _calls()[0](seeds.algo, seeds.init_keys, warmup)


def train_states(seeds: Seeds, states, steps: int):
    """`(states, metrics)` after `steps` more environment steps of every seed
    (metrics: `(seeds, updates)` arrays)."""
    return _calls()[1](seeds.algo, states, steps)


def evaluate_states(seeds: Seeds, states, keys, episodes: int):
    """Greedy returns of every seed, shape `(seeds, episodes)`."""
    return _calls()[2](seeds.algo, states, keys, episodes)
