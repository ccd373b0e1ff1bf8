from typing import Any

import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._adapter import AbstractAdapter, to_gymnax_space


class MultiAgentAdapter(AbstractAdapter):
    """A JaxMARL multi-agent environment as one gymnax `Environment` whose every
    quantity has a leading agent axis, in the order of `agents`.

    - observations: `[num_agents, *obs_shape]` (the agents' observations must have
        one shape, as in MPE's symmetric tasks);
    - actions: `Int[Array, "num_agents"]` (or `[num_agents, *shape]` for boxes);
    - rewards: `Float[Array, "num_agents"]`;
    - `terminated` / `truncated`: scalars, the episode's end (JaxMARL's
        `dones["__all__"]`), a truncation when the backend's `max_steps` was
        reached.

    `action_space` and `observation_space` are one agent's (they must agree across
    agents). `params` are gymnax's `EnvParams` and only state the time limit;
    the backend keeps its own. Parameter sharing across agents is then a `vmap`
    over the agent axis.

    **Arguments:**

    - `env`: the JaxMARL environment, as `jaxmarl.make(name)` returns it; its
        agents' observations must have one shape (else `ValueError`).
    - `name`: its JaxMARL id, e.g. `"MPE_simple_spread_v3"`; what the adapter's
        `name` property returns.
    """

    env: Any
    env_name: str

    def __init__(self, env: Any, name: str):
        super().__init__()
        shapes = {env.observation_space(a).shape for a in env.agents}
        if len(shapes) > 1:
            raise ValueError(
                f"jaxmarl::{name} gives its agents observations of different shapes "
                f"{sorted(shapes)}; the adapter stacks them on an agent axis and "
                "needs one shape."
            )
        self.env = env
        self.env_name = name

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def agents(self) -> list[str]:
        """The agents' names, in the order of the stacked agent axis."""
        return list(self.env.agents)

    @property
    def num_agents(self) -> int:
        """The number of agents (the size of the stacked agent axis)."""
        return len(self.env.agents)

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters whose time limit is the backend's `max_steps` (0: none)."""
        return environment.EnvParams(
            max_steps_in_episode=int(getattr(self.env, "max_steps", 0))
        )

    def _stack(self, tree: dict[str, Any]) -> Array:
        return jnp.stack([tree[a] for a in self.env.agents])

    def _reset(self, key: PRNGKeyArray, params: Any) -> tuple[Array, PyTree]:
        del params
        obs, state = self.env.reset(key)
        return self._stack(obs), state

    def _step(
        self, key: PRNGKeyArray, env_state: Any, action: Array, params: Any
    ) -> tuple[Array, PyTree, Array, Array, Array, dict[str, Any]]:
        del params
        actions = {a: action[i] for i, a in enumerate(self.env.agents)}
        obs, state, rewards, dones, info = self.env.step_env(key, env_state, actions)
        done = dones["__all__"]
        max_steps = getattr(self.env, "max_steps", None)
        step = getattr(state, "step", None)
        if max_steps is not None and step is not None:
            truncated = done & (step >= max_steps)
        else:
            truncated = jnp.array(False)
        reward = self._stack(rewards).astype(jnp.float32)
        return self._stack(obs), state, reward, done & ~truncated, truncated, info

    @property
    def num_actions(self) -> int:
        return int(self.action_space().n)

    def action_space(self, params: Any = None) -> spaces.Space:
        return to_gymnax_space(self.env.action_space(self.env.agents[0]))

    def observation_space(self, params: Any = None) -> spaces.Space:
        return to_gymnax_space(self.env.observation_space(self.env.agents[0]))


def make_jaxmarl(name: str, **kwargs: Any) -> MultiAgentAdapter:
    import jaxmarl

    return MultiAgentAdapter(jaxmarl.make(name, **kwargs), name)


def jaxmarl_names() -> list[str]:
    import jaxmarl

    return list(jaxmarl.registered_envs)
