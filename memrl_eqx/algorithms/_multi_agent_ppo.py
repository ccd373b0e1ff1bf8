"""`IPPO` and `MAPPO`: PPO for cooperative multi-agent environments, the agents
as extra streams of `PPO`'s own rollout, targets and update."""

import dataclasses
import functools as ft
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from gymnax.environments import spaces
from gymnax.environments.environment import Environment
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .. import _agents
from ..envs import AbstractWrapper
from ..nn import Network, Timestep
from ._checks import _check_network, _TIME
from ._ppo import _is_discrete, _mode, PPO, PPOConfig, PPOState
from ._rollout import (
    add_time_axis,
    first_timestep,
    next_timestep,
    reset_envs,
    step_envs,
)


class MultiAgentPPOConfig(PPOConfig):
    """Hyperparameters of `IPPO` and `MAPPO` (also exported as `IPPOConfig` and
    `MAPPOConfig`): every field of [`memrl_eqx.algorithms.PPOConfig`][], with
    the same defaults and meaning, and one more.

    - `share_parameters` (True): one actor and one critic for all agents, each
      agent's input with its one-hot agent id appended; False: each agent has
      its own parameters (networks whose every array has a leading agent axis,
      as `IPPO.networks` / `MAPPO.networks` build them) and no id.

    Counts are of environments, not agents: `num_envs` environments of
    `num_agents` agents each, `num_minibatches` must divide `num_envs` (a
    minibatch holds all agents of its environments), and `batch_size =
    num_envs * num_steps` environment steps per update (times `num_agents`
    agent steps).

    **Arguments:** the fields `num_envs`, `num_steps`, `num_minibatches`,
    `update_epochs`, `gamma`, `gae_lambda`, `clip_coefficient`,
    `entropy_coefficient`, `value_coefficient`, `normalize_advantage`,
    `clip_value_loss`, `reward_scale`, `clip_actions`, `burn_in_length` (as in
    `PPOConfig`) and `share_parameters`, all keyword arguments with defaults.
    """

    share_parameters: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if not isinstance(self.share_parameters, bool):
            raise ValueError(
                "MultiAgentPPOConfig: `share_parameters` must be a bool; got "
                f"{self.share_parameters!r}."
            )


IPPOConfig = MultiAgentPPOConfig
MAPPOConfig = MultiAgentPPOConfig


class _AgentEpisodeStatisticsState(eqx.Module):
    env_state: PyTree
    episode_return: Float[Array, " agents"]
    episode_length: Int[Array, ""]
    returned_episode_return: Float[Array, " agents"]
    returned_episode_length: Int[Array, ""]


class _AgentEpisodeStatistics(AbstractWrapper):
    """[`memrl_eqx.envs.EpisodeStatistics`][] for an environment with a leading
    agent axis: the same `info` entries, the returns per agent `(num_agents,)`,
    the episode's end and length one for all agents."""

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKeyArray, params: Any = None):
        obs, env_state = self.env.reset(key, params)
        zeros = jnp.zeros((jtu.tree_leaves(obs)[0].shape[0],), jnp.float32)
        zero = jnp.array(0, jnp.int32)
        state = _AgentEpisodeStatisticsState(env_state, zeros, zero, zeros, zero)
        return obs, state

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(self, key: PRNGKeyArray, state: Any, action: Any, params: Any = None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        done = jnp.asarray(terminated, bool) | jnp.asarray(truncated, bool)
        episode_return = state.episode_return + jnp.asarray(reward, jnp.float32)
        episode_length = state.episode_length + 1
        returned_return = jnp.where(done, episode_return, state.returned_episode_return)
        returned_length = jnp.where(done, episode_length, state.returned_episode_length)
        state = _AgentEpisodeStatisticsState(
            env_state,
            jnp.where(done, 0.0, episode_return),
            jnp.where(done, 0, episode_length),
            returned_return,
            returned_length,
        )
        info = {
            **info,
            "returned_episode": done,
            "returned_episode_return": returned_return,
            "returned_episode_length": returned_length,
        }
        return obs, state, reward, terminated, truncated, info


class _InputSpace(Environment):
    """Not an environment: the spaces of one agent's network input, for
    building and checking networks with the single-agent builders."""

    obs_shape: tuple[int, ...]
    agent_space: Any

    def __init__(self, obs_shape: tuple[int, ...], agent_space: Any):
        self.obs_shape = obs_shape
        self.agent_space = agent_space

    @property
    def default_params(self) -> Any:
        return None

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, self.obs_shape, jnp.float32)

    def action_space(self, params: Any = None) -> Any:
        return self.agent_space


def _num_agents(caller: str, env: Environment) -> int:
    num_agents = getattr(env, "num_agents", None)
    if type(num_agents) is not int or num_agents < 1:
        raise ValueError(
            f"{caller}: `env` must be a multi-agent environment whose every "
            "quantity has a leading agent axis and which says how many agents it "
            "has (an int `num_agents`), as `memrl_eqx.envs.make('jaxmarl::...')` "
            f"builds; got {type(env).__name__} with num_agents={num_agents!r}."
        )
    return num_agents


def _input_widths(
    env: Environment, env_params: Any, centralised: bool, shared: bool
) -> tuple[int, int]:
    """The widths of an agent's actor and critic inputs: its flattened
    observation (the critic of `MAPPO`: all agents' observations) and, with
    shared parameters, the one-hot agent id."""
    num_agents = env.num_agents
    obs_dim = math.prod(env.observation_space(env_params).shape)
    extra = num_agents if shared else 0
    critic_dim = num_agents * obs_dim if centralised else obs_dim
    return obs_dim + extra, critic_dim + extra


class _MultiAgentPPO(PPO):
    """What `IPPO` and `MAPPO` share; they differ only in the critic's input."""

    config: MultiAgentPPOConfig
    num_agents: int = eqx.field(static=True)

    centralised_critic: ClassVar[bool]

    def __init__(
        self,
        *,
        config: MultiAgentPPOConfig = MultiAgentPPOConfig(),
        env: Environment,
        env_params: PyTree[Any],
        actor: Network,
        critic: Network,
        optimizer: optax.GradientTransformation,
    ):
        name = type(self).__name__
        if not isinstance(config, MultiAgentPPOConfig):
            raise ValueError(
                f"{name}: `config` must be a `{name}Config` (a "
                f"`MultiAgentPPOConfig`); got {type(config).__name__}."
            )
        num_agents = _num_agents(name, env)
        space = env.action_space(env_params)
        if not _is_discrete(space) and len(getattr(space, "shape", ())) != 1:
            raise ValueError(
                f"{name}: an agent's action space must be discrete or a 1-d box; "
                f"got {type(space).__name__} with shape "
                f"{getattr(space, 'shape', None)}."
            )
        widths = _input_widths(
            env, env_params, self.centralised_critic, config.share_parameters
        )
        for label, network, role, width in (
            ("actor", actor, "policy", widths[0]),
            ("critic", critic, "value", widths[1]),
        ):
            if not config.share_parameters:
                network = _first_agent(name, label, network, num_agents)
            _check_network(
                f"{name}: `{label}` (one agent's)",
                network,
                role,
                _check_timestep(width, space),
                space,
            )
        if not isinstance(env, _AgentEpisodeStatistics):
            env = _AgentEpisodeStatistics(env)
        self.config = config
        self.env = env
        self.env_params = env_params
        self.actor = actor
        self.critic = critic
        self.optimizer = optimizer
        self.num_agents = num_agents

    # ------------------------------------------------------------ networks
    @classmethod
    def networks(
        cls,
        env: Environment,
        env_params: PyTree[Any],
        *,
        share_parameters: bool = True,
        torso: Any = "gru",
        features: int = 64,
        key: PRNGKeyArray,
    ) -> tuple[Network, Network]:
        """An actor and a critic for this algorithm on `env`, as
        [`memrl_eqx.actor_critic`][] builds them (a `Linear` embedding of width
        `features`, ReLU, the torso, a policy or value head) for one agent's
        input: its flattened observation (for `MAPPO`'s critic, all agents'),
        with its one-hot agent id when `share_parameters`.

        **Arguments:** `env` (a multi-agent environment with a leading agent
        axis, e.g. from `memrl_eqx.envs.make("jaxmarl::MPE_simple_spread_v3")`)
        and `env_params`; `share_parameters` (as in `MultiAgentPPOConfig`; it
        must match the config's); `torso` (a name of `memrl_eqx.TORSOS`, a
        sequence model or a function of a key returning one; default `"gru"`);
        `features` (default 64); `key` (keyword only).

        **Returns:** `(actor, critic)`, two [`memrl_eqx.nn.Network`][]s; without
        shared parameters, each with a leading agent axis on every array
        (`num_agents` independently initialised networks).
        """
        num_agents = _num_agents(cls.__name__, env)
        space = env.action_space(env_params)
        actor_width, critic_width = _input_widths(
            env, env_params, cls.centralised_critic, share_parameters
        )

        def build(key):
            k_actor, k_critic = jr.split(key)
            actor, _ = _agents.actor_critic(
                _InputSpace((actor_width,), space),
                None,
                torso=torso,
                features=features,
                key=k_actor,
            )
            _, critic = _agents.actor_critic(
                _InputSpace((critic_width,), space),
                None,
                torso=torso,
                features=features,
                key=k_critic,
            )
            return actor, critic

        if share_parameters:
            return build(key)
        return eqx.filter_vmap(build)(jr.split(key, num_agents))

    # ------------------------------------------------- agents as PPO streams
    @property
    def _streams_per_env(self) -> int:
        return self.num_agents

    def _inputs(self, obs: Array) -> PyTree[Array]:
        """The networks' inputs, one row per stream (environment-major), from
        observations `(env, agent, ...)`: each agent's flattened observation
        (and, `MAPPO`, all agents' as the critic's), with the one-hot agent id
        when parameters are shared."""
        num_envs, num_agents = obs.shape[:2]
        own = obs.reshape((num_envs, num_agents, -1)).astype(jnp.float32)
        inputs = [own]
        if self.centralised_critic:
            everyone = own.reshape((num_envs, 1, -1))
            inputs.append(
                jnp.broadcast_to(everyone, (num_envs, num_agents) + everyone.shape[2:])
            )
        if self.config.share_parameters:
            ids = jnp.broadcast_to(
                jnp.eye(num_agents), (num_envs, num_agents, num_agents)
            )
            inputs = [jnp.concatenate([x, ids], axis=-1) for x in inputs]
        rows = [x.reshape((num_envs * num_agents, -1)) for x in inputs]
        return tuple(rows) if self.centralised_critic else rows[0]

    def _per_stream(self, x: Array) -> Array:
        """A per-environment quantity `(env, ...)`, repeated for each agent."""
        return jnp.repeat(x, self.num_agents, axis=0)

    def _rows(self, x: Array) -> Array:
        """A per-agent quantity `(env, agent, ...)` as rows `(env * agent, ...)`."""
        return x.reshape((-1,) + x.shape[2:])

    def _reset_envs(self, key: PRNGKeyArray, num_envs: int):
        obs, env_state = reset_envs(self.env, self.env_params, key, num_envs)
        space = self.env.action_space(self.env_params)
        action_dtype = jnp.int32 if _is_discrete(space) else jnp.float32
        rows = self._inputs(obs)
        return env_state, first_timestep(rows, space.shape, action_dtype)

    def _reset(self, key: PRNGKeyArray):
        return self._reset_envs(key, self.config.num_envs)

    def _step(self, key: PRNGKeyArray, env_state: PyTree[Any], action: Array):
        action = self._env_action(action)
        by_env = action.reshape((-1, self.num_agents) + action.shape[1:])
        obs, env_state, reward, terminated, truncated, info = step_envs(
            self.env, self.env_params, key, env_state, by_env
        )
        reward = self._rows(reward)
        terminated = self._per_stream(terminated)
        truncated = self._per_stream(truncated)
        # An environment's episode is every agent's: the metrics count it once
        # (on its first agent's row), with the agents' mean return.
        first_agent = jnp.arange(action.shape[0]) % self.num_agents == 0
        rows_info = {
            "returned_episode": self._per_stream(info["returned_episode"])
            & first_agent,
            "returned_episode_return": self._per_stream(
                jnp.mean(info["returned_episode_return"], axis=1)
            ),
            "returned_episode_length": self._per_stream(
                info["returned_episode_length"]
            ),
        }
        if "final_observation" in info:
            rows_info["final_observation"] = self._inputs(info["final_observation"])
        timestep, rows_info = next_timestep(
            self._inputs(obs), action, reward, terminated, truncated, rows_info
        )
        return env_state, timestep, reward, terminated, truncated, rows_info

    def _over_streams(self, fn, *networks: Network):
        if self.config.share_parameters:
            return super()._over_streams(fn, *networks)
        params, static = eqx.partition(networks, eqx.is_array)
        one_agent = lambda p, *rows: fn(*eqx.combine(p, static), *rows)
        # Over the agents (each with its own parameters), then the environments.
        per_env = jax.vmap(one_agent)

        def mapped(*rows):
            by_env = lambda x: x.reshape((-1, self.num_agents) + x.shape[1:])
            out = jax.vmap(per_env, in_axes=(None,) + (0,) * len(rows))(
                params, *jtu.tree_map(by_env, rows)
            )
            return jtu.tree_map(lambda y: y.reshape((-1,) + y.shape[2:]), out)

        return mapped

    def _init_carries(self, network: Network) -> PyTree[Array]:
        streams = self.config.num_envs * self.num_agents
        init = lambda net, _: net.init_carry()
        return self._over_streams(init, network)(jnp.zeros((streams,)))

    def _actor_input(self, timestep: Timestep) -> Timestep:
        if not self.centralised_critic:
            return timestep
        return dataclasses.replace(timestep, obs=timestep.obs[0])

    def _critic_input(self, timestep: Timestep) -> Timestep:
        if not self.centralised_critic:
            return timestep
        return dataclasses.replace(timestep, obs=timestep.obs[1])

    # -------------------------------------------------------------- evaluate
    @eqx.filter_jit
    def evaluate(
        self,
        state: PPOState,
        key: PRNGKeyArray,
        num_episodes: int,
        deterministic: bool = True,
    ) -> dict[str, Float[Array, " episodes"]]:
        """Run `num_episodes` episodes (one per parallel environment, all its
        agents acting) with the current policy, from fresh environments and
        carries: its mode when `deterministic`, else a sample. Returns
        `{"return": (num_episodes,), "length": (num_episodes,)}`, an episode's
        return being the mean over its agents of their returns (as the
        training metric `"return"`).
        """
        if not isinstance(num_episodes, int) or num_episodes < 1:
            raise ValueError(
                "evaluate: `num_episodes` must be a positive integer; "
                f"got {num_episodes!r}."
            )
        actor = state.actor
        reset_key, key = jr.split(key)
        env_state, timestep = self._reset_envs(reset_key, num_episodes)
        streams = num_episodes * self.num_agents
        carry = self._over_streams(lambda net, _: net.init_carry(), actor)(
            jnp.zeros((streams,))
        )

        def act(net, carry, timestep, key):
            carry, dist = net(carry, add_time_axis(timestep))
            action = _mode(dist) if deterministic else dist.sample(seed=key)
            return carry, action[0]

        zeros = jnp.zeros((num_episodes,), jnp.float32)
        running = jnp.ones((num_episodes,), bool)

        def body(loop):
            key, env_state, timestep, carry, running, returns, lengths = loop
            key, act_key, env_key = jr.split(key, 3)
            carry, action = self._over_streams(act, actor)(
                carry, self._actor_input(timestep), jr.split(act_key, streams)
            )
            env_state, timestep, reward, terminated, truncated, _ = self._step(
                env_key, env_state, action
            )
            reward = jnp.mean(reward.reshape((num_episodes, -1)), axis=1)
            done = (terminated | truncated)[:: self.num_agents]
            returns = returns + jnp.where(running, reward, 0.0)
            lengths = lengths + running.astype(jnp.float32)
            running = running & ~done
            return key, env_state, timestep, carry, running, returns, lengths

        loop = (key, env_state, timestep, carry, running, zeros, zeros)
        *_, returns, lengths = lax.while_loop(lambda loop: jnp.any(loop[4]), body, loop)
        return {"return": returns, "length": lengths}


def _first_agent(caller: str, label: str, network: Network, num_agents: int) -> Network:
    """Agent 0's network of per-agent `network` (every array with a leading
    agent axis), else a `ValueError`."""
    if not isinstance(network, Network):
        return network  # `_check_network` says what it should be
    leaves = jtu.tree_leaves(eqx.filter(network, eqx.is_array))
    bad = [x.shape for x in leaves if x.ndim == 0 or x.shape[0] != num_agents]
    if bad:
        raise ValueError(
            f"{caller}: without shared parameters (`share_parameters=False`) "
            f"`{label}` must hold one network per agent, every array with a leading "
            f"axis of the {num_agents} agents (as `{caller}.networks(..., "
            f"share_parameters=False)` builds); got an array of shape {bad[0]}."
        )
    return jtu.tree_map(lambda x: x[0] if eqx.is_array(x) else x, network)


def _check_timestep(width: int, space: Any) -> Timestep:
    """`_TIME` first steps of one agent's input `(width,)`, for the checks."""
    dtype = jnp.int32 if _is_discrete(space) else jnp.float32
    return Timestep(
        obs=jnp.zeros((_TIME, width), jnp.float32),
        prev_action=jnp.zeros((_TIME,) + tuple(space.shape), dtype),
        prev_reward=jnp.zeros((_TIME,), jnp.float32),
        reset=jnp.ones((_TIME,), bool),
    )


class IPPO(_MultiAgentPPO):
    """Independent PPO (de Witt et al. 2020) for cooperative multi-agent
    environments: every agent acts with a recurrent (or feed-forward) actor on
    its own observation and learns a critic of its own observation, all with
    `PPO`'s objective, targets and update.

    It *is* `PPO` with the agents as extra streams: `num_envs` environments of
    `num_agents` agents are `num_envs * num_agents` rows of timesteps and
    carries (environment-major: row `e * num_agents + a` is agent `a` of
    environment `e`), and `PPO`'s rollout, GAE, loss and minibatching run on
    them unchanged. So:

    - each agent's carries (actor and critic) start from `init_carry()` at
      every episode start of its environment, through the reset flag of its
      own row, and each agent's trajectory is replayed from the carry it
      started the rollout with;
    - time limits are not terminations (MPE's episodes are all truncated,
      after 26 steps): each agent's target bootstraps from its critic's value of its
      final observation;
    - a minibatch holds whole environments (all their agents);
    - the state is a [`memrl_eqx.algorithms.PPOState`][] whose `timestep`,
      `actor_carry` and `critic_carry` have `num_envs * num_agents` rows (and
      `env_state` `num_envs`): `init`, `train`, `evaluate` are pure and jitted,
      `eqx.filter_vmap` over seeds works, and checkpoints are those of any
      state ([`memrl_eqx.save_checkpoint`][]).

    Parameters are shared across agents by default (one actor, one critic; an
    agent's input is its flattened observation with its one-hot agent id
    appended), or per agent with `config.share_parameters = False` (networks
    with a leading agent axis, as `IPPO.networks` builds them, applied to the
    agents' rows with `vmap`).

    The metrics of `train` are `PPO`'s; `"return"` is the mean over the
    episodes that ended of the agents' mean return, and `"episodes"` counts
    environment episodes.

    **Arguments:** `config` (an `IPPOConfig`, that is a
    [`memrl_eqx.algorithms.MultiAgentPPOConfig`][]), `env` (a gymnax
    environment whose every quantity has a leading agent axis and that has an
    int `num_agents`, as `memrl_eqx.envs.make("jaxmarl::...")` returns;
    its `action_space` and `observation_space` are one agent's), `env_params`,
    `actor` (a `Network` with a policy head on one agent's input, see
    `IPPO.networks`), `critic` (a `Network` with `heads.VNetwork` on the same
    input), `optimizer` (an optax transformation for both).

    **Example:**

    ```python
    import jax
    import optax
    import memrl_eqx
    from memrl_eqx.algorithms import IPPO, IPPOConfig

    env, params = memrl_eqx.envs.make("jaxmarl::MPE_simple_spread_v3")
    actor, critic = IPPO.networks(env, params, torso="gru", features=16,
                                  key=jax.random.key(0))
    config = IPPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=1)
    algo = IPPO(config=config, env=env, env_params=params, actor=actor,
                critic=critic, optimizer=optax.adam(1e-3))
    state = algo.init(jax.random.key(1))
    state, metrics = algo.train(state, 32)
    assert state.actor_carry.shape == (4 * env.num_agents, 16)
    assert algo.evaluate(state, jax.random.key(2), 2)["return"].shape == (2,)
    ```
    """

    centralised_critic: ClassVar[bool] = False


class MAPPO(_MultiAgentPPO):
    """Multi-agent PPO with a centralised critic (Yu et al. 2022): as `IPPO`
    (recurrent decentralised actors on their own observations, `PPO`'s update
    with the agents as extra streams), but every agent's critic sees the state
    of the whole environment.

    That state is the concatenation of all agents' (flattened) observations,
    agent 0's first. JaxMARL's MPE tasks (`MPE_simple_spread_v3`, ...) give no
    world state of their own, and JaxMARL's own MAPPO uses this same
    concatenation for them; for tasks whose backend has a separate world
    state (SMAX), the `jaxmarl::` adapter does not expose it and this
    concatenation stands in. With shared parameters the critic's input also
    has the agent's one-hot id, so each agent gets its own value (agents'
    rewards may differ, as in simple spread's collision penalties).

    The stored timesteps' `obs` is a pair `(actor input, critic input)`, each
    network seeing its own. Everything else (state, metrics, parameter
    sharing, checkpoints, vmap over seeds) is as in `IPPO`. Unlike the Flax
    original's `MAPPO`, which calls its networks with an argument list of an
    older release and fails, this one is tested to learn.

    **Arguments:** `config` (a `MAPPOConfig`, that is a
    [`memrl_eqx.algorithms.MultiAgentPPOConfig`][]), `env` and `env_params`
    (as in `IPPO`), `actor` (a `Network` with a policy head on one agent's
    input), `critic` (a `Network` with `heads.VNetwork` on the
    centralised input, see `MAPPO.networks`), `optimizer` (an optax
    transformation for both).

    **Example:**

    ```python
    import jax
    import optax
    import memrl_eqx
    from memrl_eqx.algorithms import MAPPO, MAPPOConfig

    env, params = memrl_eqx.envs.make("jaxmarl::MPE_simple_spread_v3")
    config = MAPPOConfig(num_envs=4, num_steps=8, num_minibatches=2,
                         update_epochs=1, share_parameters=False)
    actor, critic = MAPPO.networks(env, params, share_parameters=False,
                                   torso="gru", features=16, key=jax.random.key(0))
    algo = MAPPO(config=config, env=env, env_params=params, actor=actor,
                 critic=critic, optimizer=optax.adam(1e-3))
    state = algo.init(jax.random.key(1))
    state, metrics = algo.train(state, 32)
    assert algo.evaluate(state, jax.random.key(2), 2)["return"].shape == (2,)
    ```
    """

    centralised_critic: ClassVar[bool] = True
