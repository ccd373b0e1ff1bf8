import functools as ft
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, PRNGKeyArray, PyTree

from ._arguments import check_probability
from ._wrapper import AbstractWrapper


# Salt folded into the step key for the sticky draw, so the wrapped environment
# sees the key it would see unwrapped.
_STICKY_SALT = 0x537469


class StickyActionState(eqx.Module):
    """The state of a [`memrl_eqx.envs.StickyAction`][] environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `previous_action`: the action the wrapped environment executed at the
        previous step (of the action space's shape and dtype; zeros after
        `reset`).
    - `first`: `Bool[Array, ""]`, whether the next step is the first of an
        episode (true after `reset` and after a step that ended an episode).
    """

    env_state: PyTree
    previous_action: Array
    first: Bool[Array, ""]


class StickyAction(AbstractWrapper):
    """Sticky actions (Machado et al. 2018): at each step, with probability
    `probability`, the environment executes the action it executed at the
    previous step instead of the agent's.

    Whether an action sticks is drawn afresh at each step from the step key
    (folded with a constant, so the wrapped environment sees the keys it would
    see unwrapped), independently in each environment under `jax.vmap`. The
    first step of every episode (after `reset` and after an auto-reset)
    executes the agent's action: nothing sticks across an episode boundary. An
    action that sticks stays the executed one, so it can stick again. The
    state ([`memrl_eqx.envs.StickyActionState`][]) keeps the executed action;
    observations, rewards, `info` and the spaces are the wrapped environment's.

    **Arguments:**

    - `env`: the environment to wrap, with a `Discrete` or `Box` action space.
    - `probability`: the probability, in `[0, 1]`, that the previous action is
        repeated (default 0.25, the value Machado et al. recommend for Atari;
        the Flax original's default was 0.1).

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import make, StickyAction

    env, params = make("gymnax::CartPole-v1")
    env = StickyAction(env, probability=1.0)  # every action after the first sticks
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, *_ = env.step(jax.random.key(1), state, 1, params)
    obs, state, *_ = env.step(jax.random.key(2), state, 0, params)
    assert state.previous_action == 1  # the second step pushed right again
    ```
    """

    probability: float = eqx.field(static=True)

    def __init__(self, env: Environment, probability: float = 0.25):
        super().__init__(env)
        space = env.action_space(env.default_params)
        if not isinstance(space, spaces.Discrete | spaces.Box):
            raise ValueError(
                "StickyAction needs env with a Discrete or Box action space, got "
                f"{space!r}."
            )
        self.probability = check_probability(probability)

    def _as_action(self, action: Any, params: Any) -> Array:
        space = self.env.action_space(
            self.env.default_params if params is None else params
        )
        return jnp.broadcast_to(
            jnp.asarray(action).astype(space.dtype), tuple(space.shape)
        )

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: PRNGKeyArray, params: Any = None
    ) -> tuple[PyTree, StickyActionState]:
        obs, env_state = self.env.reset(key, params)
        state = StickyActionState(
            env_state, self._as_action(0, params), jnp.array(True)
        )
        return obs, state

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: PRNGKeyArray,
        state: StickyActionState,
        action: Any,
        params: Any = None,
    ) -> tuple[PyTree, StickyActionState, Array, Array, Array, dict[str, Any]]:
        sticky_key = jax.random.fold_in(key, _STICKY_SALT)
        sticks = jax.random.bernoulli(sticky_key, self.probability) & ~state.first
        executed = jnp.where(
            sticks, state.previous_action, self._as_action(action, params)
        )
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, executed, params
        )
        done = jnp.asarray(terminated, dtype=bool) | jnp.asarray(truncated, dtype=bool)
        state = StickyActionState(env_state, executed, done)
        return obs, state, reward, terminated, truncated, info
