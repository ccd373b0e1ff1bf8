"""`R2D2` and `DRQN`: the names a user of the Flax original (and of its predecessor
memory-rl) imports, as `DQN` with the matching preset."""

import dataclasses
from collections.abc import Callable
from typing import Any

import optax
from gymnax.environments.environment import Environment
from jaxtyping import PyTree

from ..nn import Network
from ._dqn import DQN, DQNConfig


def _preset(
    name: str,
    preset: Callable[..., DQNConfig],
    env: Environment,
    env_params: PyTree[Any],
    q_network: Network,
    optimizer: optax.GradientTransformation,
    overrides: dict[str, Any],
) -> DQN:
    if "config" in overrides:
        raise TypeError(
            f"{name} takes DQNConfig fields as keyword overrides (e.g. "
            f"{name}(..., num_envs=8)), not `config`; to pass a whole config, "
            "build DQN(config=..., ...) instead."
        )
    fields = [f.name for f in dataclasses.fields(DQNConfig)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TypeError(
            f"{name} got {', '.join(unknown)}, which are not DQNConfig fields; "
            f"the fields are {', '.join(fields)}."
        )
    return DQN(
        config=preset(**overrides),
        env=env,
        env_params=env_params,
        q_network=q_network,
        optimizer=optimizer,
    )


def R2D2(
    *,
    env: Environment,
    env_params: PyTree[Any],
    q_network: Network,
    optimizer: optax.GradientTransformation,
    **overrides: Any,
) -> DQN:
    """R2D2 (Kapturowski et al. 2019): a [`memrl_eqx.algorithms.DQN`][] with
    the preset `DQNConfig.r2d2()` (burn-in, n-step
    double-Q targets with value rescaling, prioritised sequence replay).

    A thin name, so that code written for the Flax original, which had an
    `R2D2` class, finds one: `R2D2(env=..., ...)` is
    `DQN(config=DQNConfig.r2d2(**overrides), env=..., ...)`, and what it
    returns is that `DQN` (trained, evaluated, vmapped and checkpointed as any).

    **Arguments:**

    - `env`, `env_params`: the gymnax environment (discrete actions) and its
        params.
    - `q_network`: the [`memrl_eqx.nn.Network`][] with a Q head (e.g. from
        `memrl_eqx.q_network`); give it a recurrent torso, as R2D2 is meant
        for.
    - `optimizer`: the optax transformation.
    - `**overrides`: any [`memrl_eqx.algorithms.DQNConfig`][] field, replacing
        the preset's (e.g. `num_envs=8, sequence_length=80`).

    **Raises:** `TypeError` for a keyword that is not a `DQNConfig` field
    (naming the fields), or for `config=`; `ValueError` from `DQNConfig` for a
    bad value.

    **Example:**

    ```python
    import jax
    import optax
    import memrl_eqx
    from memrl_eqx.algorithms import DQN, DQNConfig, R2D2

    env, params = memrl_eqx.envs.make("popgym::RepeatPreviousEasy")
    q = memrl_eqx.q_network(env, params, torso="gru", key=jax.random.key(0))
    algo = R2D2(
        env=env, env_params=params, q_network=q, optimizer=optax.adam(3e-4), num_envs=8
    )
    assert isinstance(algo, DQN) and algo.config == DQNConfig.r2d2(num_envs=8)
    ```
    """
    return _preset(
        "R2D2", DQNConfig.r2d2, env, env_params, q_network, optimizer, overrides
    )


def DRQN(
    *,
    env: Environment,
    env_params: PyTree[Any],
    q_network: Network,
    optimizer: optax.GradientTransformation,
    **overrides: Any,
) -> DQN:
    """DRQN (Hausknecht & Stone 2015): a [`memrl_eqx.algorithms.DQN`][] with
    the preset `DQNConfig.drqn()` (uniform replay of
    sequences run from the stored carry, one-step targets, no burn-in).

    A thin name, so that code written for memory-rl, which had a `DRQN` class,
    finds one: `DRQN(env=..., ...)` is
    `DQN(config=DQNConfig.drqn(**overrides), env=..., ...)`, and what it returns
    is that `DQN`.

    **Arguments:**

    - `env`, `env_params`: the gymnax environment (discrete actions) and its
        params.
    - `q_network`: the [`memrl_eqx.nn.Network`][] with a Q head, with a
        recurrent torso.
    - `optimizer`: the optax transformation.
    - `**overrides`: any [`memrl_eqx.algorithms.DQNConfig`][] field, replacing
        the preset's (e.g. `sequence_length=32`).

    **Raises:** as [`memrl_eqx.algorithms.R2D2`][].

    **Example:**

    ```python
    import jax
    import optax
    import memrl_eqx
    from memrl_eqx.algorithms import DQNConfig, DRQN

    env, params = memrl_eqx.envs.make("popgym::RepeatPreviousEasy")
    q = memrl_eqx.q_network(env, params, torso="gru", key=jax.random.key(0))
    algo = DRQN(env=env, env_params=params, q_network=q, optimizer=optax.adam(3e-4))
    assert algo.config == DQNConfig.drqn()
    ```
    """
    return _preset(
        "DRQN", DQNConfig.drqn, env, env_params, q_network, optimizer, overrides
    )
