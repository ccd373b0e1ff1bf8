"""`StreamAC`: streaming actor-critic AC(λ) with eligibility traces and ObGD
(Elsayed, Vasan and Mahmood 2024), recurrent through `RTRL`."""

import math
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from gymnax.environments.environment import Environment
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._sharding import sharded_training
from ..envs import EpisodeStatistics, RunningStatistics
from ..nn import Network, Timestep
from ._checks import check_networks
from ._evaluate import evaluate_policy
from ._obgd import accumulate_trace, obgd_step_size
from ._rollout import (
    add_time_axis,
    batch_init_carry,
    episode_info,
    episode_metrics,
    first_timestep,
    reset_envs,
    step_once,
)


ScalarLike = float | Float[Array, ""]


class StreamACConfig(eqx.Module):
    """Hyperparameters of `StreamAC`; every field has a default, so
    `StreamACConfig()` is the paper's Stream AC(λ) (one environment, `gamma`
    0.99, `trace_lambda` 0.8, step sizes 1, κ 3 for the actor and 2 for the
    critic, entropy coefficient 0.01).

    Integers and flags fix the program and are static. Floats may be JAX
    scalars, so a sweep over them is one `eqx.filter_vmap`.

    - `num_envs` (1): independent streams, each with its own environment,
      carries and eligibility traces, learning one shared pair of networks (see
      `StreamAC`). The paper uses 1.
    - `num_steps` (1000): steps of every environment per entry of the metrics.
      Every step is a learning update (batch size 1 per stream, no replay);
      `num_steps` only sets how often `train` reports, and
      `steps_per_update = num_envs * num_steps` is what one entry covers.
    - `gamma` (0.99): discount; also the discount of the return whose running
      standard deviation scales the rewards.
    - `trace_lambda` (0.8): $\\lambda$ of the eligibility traces (they decay by
      $\\gamma\\lambda$ per step).
    - `actor_lr` (1.0), `critic_lr` (1.0): ObGD's step sizes $\\alpha$.
    - `actor_kappa` (3.0), `critic_kappa` (2.0): ObGD's $\\kappa$ (see
      `obgd_step_size`); larger is more conservative.
    - `entropy_coefficient` (0.01): $\\tau$; the actor's trace accumulates
      $\\nabla[\\log\\pi(a|s) + \\tau\\,\\mathrm{sign}(\\delta)\\,
      H(\\pi(\\cdot|s))]$, so its update $\\hat\\alpha\\delta z$ adds
      $\\tau|\\delta|\\nabla H$.
    - `normalize_observations` (True): observations are standardised by the
      running mean and sample variance of every observation seen so far.
    - `scale_rewards` (True): rewards are divided by the running standard
      deviation of the discounted return of the current episode.
    - `epsilon` (1e-8): added to both variances before the square root.
    - `clip_actions` (True): continuous actions are clipped to the action box
      before the environment sees them; the sampled action is what is scored.
    """

    num_envs: int = eqx.field(static=True, default=1)
    num_steps: int = eqx.field(static=True, default=1000)
    gamma: ScalarLike = 0.99
    trace_lambda: ScalarLike = 0.8
    actor_lr: ScalarLike = 1.0
    critic_lr: ScalarLike = 1.0
    actor_kappa: ScalarLike = 3.0
    critic_kappa: ScalarLike = 2.0
    entropy_coefficient: ScalarLike = 0.01
    normalize_observations: bool = eqx.field(static=True, default=True)
    scale_rewards: bool = eqx.field(static=True, default=True)
    epsilon: ScalarLike = 1e-8
    clip_actions: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        for name in ("num_envs", "num_steps"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(
                    f"StreamACConfig: `{name}` must be a positive integer; got "
                    f"{value!r}."
                )
        for name in ("gamma", "trace_lambda"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"StreamACConfig: `{name}` must lie in [0, 1]; got {value}."
                )
        for name in ("actor_lr", "critic_lr", "actor_kappa", "critic_kappa", "epsilon"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not value > 0.0:
                raise ValueError(
                    f"StreamACConfig: `{name}` must be positive; got {value}."
                )
        value = self.entropy_coefficient
        if isinstance(value, int | float) and value < 0.0:
            raise ValueError(
                f"StreamACConfig: `entropy_coefficient` must be non-negative; got "
                f"{value}."
            )
        for name in ("normalize_observations", "scale_rewards", "clip_actions"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(
                    f"StreamACConfig: `{name}` must be a bool; got {value!r}."
                )

    @property
    def steps_per_update(self) -> int:
        """Environment steps per entry of the metrics: `num_envs * num_steps`."""
        return self.num_envs * self.num_steps


class StreamACState(eqx.Module):
    """The whole training state of `StreamAC`: a PyTree, so it can be vmapped
    over seeds, checkpointed and resumed exactly.

    `actor`, `critic`: the current networks. `obs_statistics`: the running
    statistics of the observations (a [`memrl_eqx.envs.RunningStatistics`][];
    the sample variance is `m2 / (count - 1)`), `return_statistics`: those of
    the discounted returns that scale the rewards. `key`: the PRNG key of the
    next step; `step`: environment steps so far over all streams.

    Leaves with a leading `num_envs` axis: `actor_trace`, `critic_trace` (the
    eligibility traces, of the networks' floating-point parameters' structure:
    `eqx.filter(network, eqx.is_inexact_array)`), `env_state`, `timestep` (the
    next input, its observation already normalised), `actor_carry`,
    `critic_carry`, `return_trace` (each stream's discounted return so far in
    its episode).
    """

    actor: Network
    critic: Network
    actor_trace: PyTree[Array]
    critic_trace: PyTree[Array]
    env_state: PyTree[Any]
    timestep: Timestep
    actor_carry: PyTree[Array]
    critic_carry: PyTree[Array]
    obs_statistics: RunningStatistics
    return_statistics: RunningStatistics
    return_trace: Float[Array, " env"]
    key: PRNGKeyArray
    step: Int[Array, ""]

    # Leading axis `num_envs`: split across devices by `memrl_eqx.shard`.
    env_batched_fields: ClassVar[tuple[str, ...]] = (
        "actor_trace",
        "critic_trace",
        "env_state",
        "timestep",
        "actor_carry",
        "critic_carry",
        "return_trace",
    )


def sample_variance(statistics: RunningStatistics) -> PyTree[Array]:
    """The sample variance `m2 / (count - 1)` per leaf of running statistics, and
    ones until two elements were seen (the paper's `SampleMeanStd`)."""
    enough = statistics.count >= 2.0
    denominator = jnp.maximum(statistics.count - 1.0, 1.0)
    return jtu.tree_map(
        lambda m2: jnp.where(enough, m2 / denominator, jnp.ones_like(m2)),
        statistics.m2,
    )


def _update_each(statistics: RunningStatistics, xs: PyTree[Array]) -> RunningStatistics:
    """Welford's update with each element of `xs` (leading axis) in turn."""
    return lax.scan(lambda s, x: (s.update(x), None), statistics, xs)[0]


def _normalize(statistics: RunningStatistics, x: PyTree[Array], epsilon) -> Any:
    """One observation (no batch axis) standardised by the statistics."""
    return jtu.tree_map(
        lambda x, m, v: ((x - m) / jnp.sqrt(v + epsilon)).astype(x.dtype),
        x,
        statistics.mean,
        sample_variance(statistics),
    )


def _normalize_batch(statistics, x, epsilon):
    return jax.vmap(lambda x: _normalize(statistics, x, epsilon))(x)


def _per_stream(fn: Callable, num_envs: int, *args: Any) -> Any:
    """`jax.vmap(fn)(*args)` over the streams' leading axis. With one stream,
    `fn` runs unbatched (and its outputs get the axis back): vmapping RTRL's
    per-step derivatives over a batch of one costs about 2.5x on the CPU."""
    if num_envs > 1:
        return jax.vmap(fn)(*args)
    outputs = fn(*jtu.tree_map(lambda x: x[0], args))
    return jtu.tree_map(lambda x: x[None], outputs)


def _is_discrete(space) -> bool:
    return hasattr(space, "n")


class StreamAC(eqx.Module):
    """Stream AC(λ): a streaming actor-critic (Elsayed, Vasan and Mahmood 2024,
    "Streaming Deep Reinforcement Learning Finally Works").

    Every environment step is one learning update, from that step alone: no
    replay, no batch, no target network. With $\\delta = \\tilde r + \\gamma
    (1 - \\text{terminated})\\,v(s') - v(s)$,

    - the critic's trace accumulates $z_w \\leftarrow \\gamma\\lambda z_w +
      \\nabla_w v(s)$ and the actor's $z_\\theta \\leftarrow \\gamma\\lambda z_\\theta +
      \\nabla_\\theta[\\log\\pi(a|s) + \\tau\\,\\mathrm{sign}(\\delta)
      H(\\pi(\\cdot|s))]$,
      both cleared where an episode starts;
    - each network takes an ObGD step $\\theta \\leftarrow \\theta + \\hat\\alpha
      \\delta z$, with $\\hat\\alpha = \\alpha / \\max(1, \\kappa\\alpha
      \\max(|\\delta|,1) \\lVert z\\rVert_1)$ (see `obgd_step_size`);
    - observations are standardised by their running mean and variance
      (Welford) and rewards $r$ divided by the running standard deviation of
      the discounted return $u \\leftarrow \\gamma u + r$ of the current episode
      ($\\tilde r = r / \\sqrt{\\sigma_u^2 + \\epsilon}$), as the paper prescribes.

    Time limits are not terminations: at a truncation $v(s')$ is the critic's
    value of `info["final_observation"]`. The paper's networks (sparse
    initialisation, LayerNorm, leaky ReLU) come from
    [`memrl_eqx.algorithms.stream_actor_critic`][]; any `Network`s work.

    **Memory.** Each step runs the networks on that step alone, from the
    carry the previous step left, and differentiates only that step: the carry
    enters as a constant. With a torso wrapped in [`memrl_eqx.nn.RTRL`][]
    (e.g. the torso `"rtrl_lru"`) that gradient is the exact online gradient
    through the whole episode (RTRL carries the sensitivities forward), so the
    traces are of true recurrent gradients and the memory is learned; with any
    other recurrent torso the gradient stops at the carry (one-step truncation).

    **Several streams.** With `config.num_envs = N > 1` there are $N$
    independent streams (environments, carries and traces) and one shared
    actor and critic: each stream computes its own $\\delta$, trace and
    bounded step, and the networks move by the mean of the $N$ steps; the
    observation and return statistics are shared, updated with every stream's
    values in turn. $N = 1$ is exactly the paper's algorithm. For $N$
    independent learners instead, vmap over seeds (`eqx.filter_vmap`).

    **Arguments:** `config` (`StreamACConfig`), `env` (any gymnax
    `Environment` whose action space is discrete or a 1-d box), `env_params`,
    `actor` (a `Network` whose head returns a distrax distribution with an exact
    entropy, e.g. `heads.Categorical` or `heads.Gaussian`), `critic` (a
    `Network` with `heads.VNetwork`). There is no optimiser argument: ObGD is
    part of the algorithm.
    """

    config: StreamACConfig
    env: Environment = eqx.field(static=True)
    env_params: PyTree[Any]
    actor: Network
    critic: Network

    def __init__(
        self,
        *,
        config: StreamACConfig = StreamACConfig(),
        env: Environment,
        env_params: PyTree[Any],
        actor: Network,
        critic: Network,
    ):
        if not isinstance(config, StreamACConfig):
            raise ValueError(
                f"StreamAC: `config` must be a StreamACConfig; got "
                f"{type(config).__name__}."
            )
        space = env.action_space(env_params)
        if not _is_discrete(space) and len(getattr(space, "shape", ())) != 1:
            raise ValueError(
                "StreamAC: the environment's action space must be discrete or a "
                f"1-d box; got {type(space).__name__} with shape "
                f"{getattr(space, 'shape', None)}."
            )
        check_networks(
            "StreamAC",
            env,
            env_params,
            actor=(actor, "policy"),
            critic=(critic, "value"),
        )
        if not isinstance(env, EpisodeStatistics):
            env = EpisodeStatistics(env)
        self.config = config
        self.env = env
        self.env_params = env_params
        self.actor = actor
        self.critic = critic

    # ------------------------------------------------------------------ init
    @eqx.filter_jit
    def init(self, key: PRNGKeyArray) -> StreamACState:
        """A fresh training state: environments reset (their first observations
        counted in the statistics), carries at their start, traces zero."""
        cfg = self.config
        key, reset_key = jr.split(key)
        n = cfg.num_envs
        obs, env_state = reset_envs(self.env, self.env_params, reset_key, n)
        space = self.env.action_space(self.env_params)
        action_dtype = jnp.int32 if _is_discrete(space) else jnp.float32
        obs_statistics = RunningStatistics.zeros(jtu.tree_map(lambda x: x[0], obs))
        if cfg.normalize_observations:
            obs_statistics = _update_each(obs_statistics, obs)
            obs = _normalize_batch(obs_statistics, obs, cfg.epsilon)
        timestep = first_timestep(obs, space.shape, action_dtype)
        zeros = lambda network: jtu.tree_map(
            lambda p: jnp.zeros((n,) + p.shape, p.dtype),
            eqx.filter(network, eqx.is_inexact_array),
        )
        return StreamACState(
            actor=self.actor,
            critic=self.critic,
            actor_trace=zeros(self.actor),
            critic_trace=zeros(self.critic),
            env_state=env_state,
            timestep=timestep,
            actor_carry=batch_init_carry(self.actor, n),
            critic_carry=batch_init_carry(self.critic, n),
            obs_statistics=obs_statistics,
            return_statistics=RunningStatistics.zeros(jnp.zeros((), jnp.float32)),
            return_trace=jnp.zeros((n,), jnp.float32),
            key=key,
            step=jnp.zeros((), jnp.int32),
        )

    # ----------------------------------------------------------------- train
    def train(
        self, state: StreamACState, num_steps: int
    ) -> tuple[StreamACState, dict[str, Float[Array, " updates"]]]:
        """Train for at least `num_steps` environment steps over all streams,
        rounded up to whole entries of `config.steps_per_update` steps (every
        step is an update; the rounding only groups the metrics).

        **Returns:** `(state, metrics)`; `metrics[name]` has one entry per
        `config.num_steps` steps of every stream, the mean over them:
        `"return"`, `"length"` (over the episodes that ended, NaN if none did),
        `"episodes"`, `"step"` (environment steps so far), `"td_error"` (the
        mean $\\delta$), `"abs_td_error"`, `"value"`, `"entropy"`,
        `"step_size/actor"`, `"step_size/critic"` (ObGD's $\\hat\\alpha$) and
        `"reward_scale"` ($1/\\sqrt{\\sigma_u^2+\\epsilon}$).
        """
        if not isinstance(num_steps, int) or num_steps <= 0:
            raise ValueError(
                "StreamAC.train: `num_steps` must be a positive integer; got "
                f"{num_steps!r}."
            )
        num_updates = math.ceil(num_steps / self.config.steps_per_update)
        with sharded_training(state):
            return _train(self, state, num_updates)

    def _env_action(self, action: Array) -> Array:
        space = self.env.action_space(self.env_params)
        if _is_discrete(space) or not self.config.clip_actions:
            return action
        bound = lambda b: jnp.broadcast_to(jnp.asarray(b, action.dtype), action.shape)
        return jnp.clip(action, bound(space.low), bound(space.high))

    def _step(
        self, state: StreamACState
    ) -> tuple[StreamACState, tuple[dict[str, Array], dict[str, Array]]]:
        """One step of every stream, and one update. Returns the new state and
        `(metrics, info)`: this step's per-stream metrics and the episode
        statistics' info."""
        cfg = self.config
        key, act_key, env_key = jr.split(state.key, 3)
        keys = jr.split(act_key, cfg.num_envs)
        actor_params, actor_static = eqx.partition(state.actor, eqx.is_inexact_array)
        critic_params, critic_static = eqx.partition(state.critic, eqx.is_inexact_array)

        # The actor: a sample, and the gradients of log pi(a|s) and H(pi(.|s)).
        def policy_terms(params, carry, timestep, key):
            actor = eqx.combine(params, actor_static)
            carry, dist = actor(carry, add_time_axis(timestep))
            action = lax.stop_gradient(dist.sample(seed=key))
            terms = jnp.stack([dist.log_prob(action)[0], dist.entropy()[0]])
            return terms, (terms, carry, action[0])

        def actor_step(carry, timestep, key):
            jac, aux = jax.jacrev(policy_terms, has_aux=True)(
                actor_params, carry, timestep, key
            )
            return jac, aux

        actor_jac, (terms, actor_carry, action) = _per_stream(
            actor_step, cfg.num_envs, state.actor_carry, state.timestep, keys
        )

        # The critic: v(s) and its gradient, from the carry before this step.
        def value(params, carry, timestep):
            critic = eqx.combine(params, critic_static)
            carry, v = critic(carry, add_time_axis(timestep))
            return v[0], carry

        def critic_step(carry, timestep):
            (v, carry), grad = jax.value_and_grad(value, has_aux=True)(
                critic_params, carry, timestep
            )
            return v, grad, carry

        values, critic_grad, critic_carry = _per_stream(
            critic_step, cfg.num_envs, state.critic_carry, state.timestep
        )

        # The environments.
        env_state, timestep, reward, terminated, truncated, info = step_once(
            self.env,
            self.env_params,
            env_key,
            state.env_state,
            self._env_action(action),
        )
        obs_statistics = state.obs_statistics
        next_obs = timestep.obs
        if cfg.normalize_observations:
            obs_statistics = _update_each(obs_statistics, next_obs)
            next_obs = _normalize_batch(obs_statistics, next_obs, cfg.epsilon)
        timestep = eqx.tree_at(lambda t: t.obs, timestep, next_obs)

        # Rewards scaled by the running std of the episode's discounted return.
        return_trace = jnp.where(
            state.timestep.reset, 0.0, cfg.gamma * state.return_trace
        )
        return_trace = return_trace + reward
        return_statistics = state.return_statistics
        if cfg.scale_rewards:
            return_statistics = _update_each(return_statistics, return_trace)
            scale = 1.0 / jnp.sqrt(sample_variance(return_statistics) + cfg.epsilon)
        else:
            scale = jnp.ones((), jnp.float32)
        scaled_reward = reward * scale

        # v(s'): of the next observation, or at a time limit of the final one.
        if "final_timestep" in info:
            final = info["final_timestep"]
            final_obs = final.obs
            if cfg.normalize_observations:
                final_obs = _normalize_batch(obs_statistics, final_obs, cfg.epsilon)
            pick = lambda a, b: jnp.where(
                truncated.reshape(truncated.shape + (1,) * (a.ndim - 1)), a, b
            )
            final = eqx.tree_at(lambda t: t.obs, final, final_obs)
            bootstrap = jtu.tree_map(pick, final, timestep)
        else:
            bootstrap = timestep
        next_values = _per_stream(
            lambda c, t: value(critic_params, c, t)[0],
            cfg.num_envs,
            critic_carry,
            bootstrap,
        )
        next_values = lax.stop_gradient(next_values)
        td_error = (
            scaled_reward
            + cfg.gamma * jnp.where(terminated, 0.0, next_values)
            - lax.stop_gradient(values)
        )

        # Traces, cleared where the step is an episode's first.
        sign = jnp.sign(td_error)
        actor_grad = jtu.tree_map(
            lambda j: (
                j[:, 0]
                + (cfg.entropy_coefficient * sign).reshape((-1,) + (1,) * (j.ndim - 2))
                * j[:, 1]
            ),
            actor_jac,
        )
        decay = cfg.gamma * cfg.trace_lambda
        trace = jax.vmap(accumulate_trace, in_axes=(0, 0, None, 0))
        actor_trace = trace(state.actor_trace, actor_grad, decay, state.timestep.reset)
        critic_trace = trace(
            state.critic_trace, critic_grad, decay, state.timestep.reset
        )

        # ObGD: each stream's bounded step; the networks move by their mean.
        def obgd(params, traces, learning_rate, kappa):
            steps = jax.vmap(
                lambda z, d: obgd_step_size(
                    z, d, learning_rate=learning_rate, kappa=kappa
                )
            )(traces, td_error)
            coefficient = steps * td_error
            update = jtu.tree_map(
                lambda z: jnp.tensordot(coefficient, z, axes=1) / cfg.num_envs,
                traces,
            )
            return eqx.apply_updates(params, update), steps

        actor_params, actor_steps = obgd(
            actor_params, actor_trace, cfg.actor_lr, cfg.actor_kappa
        )
        critic_params, critic_steps = obgd(
            critic_params, critic_trace, cfg.critic_lr, cfg.critic_kappa
        )

        state = StreamACState(
            actor=eqx.combine(actor_params, actor_static),
            critic=eqx.combine(critic_params, critic_static),
            actor_trace=actor_trace,
            critic_trace=critic_trace,
            env_state=env_state,
            timestep=timestep,
            actor_carry=actor_carry,
            critic_carry=critic_carry,
            obs_statistics=obs_statistics,
            return_statistics=return_statistics,
            return_trace=return_trace,
            key=key,
            step=state.step + cfg.num_envs,
        )
        metrics = {
            "td_error": td_error,
            "abs_td_error": jnp.abs(td_error),
            "value": values,
            "entropy": terms[:, 1],
            "step_size/actor": actor_steps,
            "step_size/critic": critic_steps,
            "reward_scale": jnp.broadcast_to(scale, td_error.shape),
        }
        return state, (metrics, episode_info(info))

    def _update(self, state: StreamACState, _) -> tuple[StreamACState, dict]:
        """`config.num_steps` steps of every stream, and their mean metrics."""
        state, (per_step, info) = lax.scan(
            lambda s, _: self._step(s), state, None, length=self.config.num_steps
        )
        metrics = {k: jnp.mean(v) for k, v in per_step.items()}
        metrics.update(episode_metrics(info))
        metrics["step"] = state.step
        return state, metrics

    # -------------------------------------------------------------- evaluate
    @eqx.filter_jit
    def evaluate(
        self,
        state: StreamACState,
        key: PRNGKeyArray,
        num_episodes: int,
        deterministic: bool = True,
    ) -> dict[str, Float[Array, " episodes"]]:
        """Run `num_episodes` episodes (one per parallel environment) with the
        current policy from fresh environments and carries, observations
        normalised by the training statistics (not updated): the policy's mode
        when `deterministic`, else a sample. Returns
        `{"return": (num_episodes,), "length": (num_episodes,)}`.
        """
        actor, cfg = state.actor, self.config
        statistics = state.obs_statistics

        def act(carry, timestep, key):
            if cfg.normalize_observations:
                obs = _normalize(statistics, timestep.obs, cfg.epsilon)
                timestep = eqx.tree_at(lambda t: t.obs, timestep, obs)
            carry, dist = actor(carry, add_time_axis(timestep))
            action = dist.mode() if deterministic else dist.sample(seed=key)
            return carry, self._env_action(action[0])

        return evaluate_policy(
            self.env, self.env_params, act, actor.init_carry(), key, num_episodes
        )


# ------------------------------------------------------------------ networks


class _LeakyReLU(eqx.Module):
    # A layer without fields (`eqx.nn.Lambda` would make the function a leaf).
    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        return jax.nn.leaky_relu(x)


def sparse_init(
    network: PyTree[Any], *, sparsity: float = 0.9, key: PRNGKeyArray
) -> PyTree[Any]:
    """`network` with every [`memrl_eqx.nn.Linear`][] layer re-initialised as
    the paper's SparseInit: weights uniform in $\\pm 1/\\sqrt{\\text{in}}$
    (LeCun), a random `ceil(sparsity * in)` of each output unit's inputs set
    to zero (at most `in - 1`, so every unit sees some input), biases zero.
    Other parameters (a recurrent cell's, a Gaussian's `log_std`) are kept.

    **Arguments:** `network`, any PyTree (a `Network`); `sparsity` in
    $[0, 1)$; `key` (keyword only).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparse_init: `sparsity` must lie in [0, 1); got {sparsity}.")
    from ..nn import Linear

    is_linear = lambda x: isinstance(x, Linear)
    layers = [x for x in jtu.tree_leaves(network, is_leaf=is_linear) if is_linear(x)]
    if not layers:
        return network
    new = []
    for layer, k in zip(layers, jr.split(key, len(layers))):
        out_features, in_features = layer.weight.shape
        k_weight, k_mask = jr.split(k)
        bound = 1.0 / math.sqrt(in_features)
        weight = jr.uniform(
            k_weight, layer.weight.shape, layer.weight.dtype, -bound, bound
        )
        zeros = min(math.ceil(sparsity * in_features), in_features - 1)
        # Per row, the `zeros` inputs of lowest random rank are cut.
        ranks = jnp.argsort(jr.uniform(k_mask, layer.weight.shape), axis=1).argsort(
            axis=1
        )
        weight = jnp.where(ranks < zeros, 0.0, weight).astype(layer.weight.dtype)
        new.append((weight, jnp.zeros_like(layer.bias)))
    return eqx.tree_at(
        lambda n: [
            leaf
            for x in jtu.tree_leaves(n, is_leaf=is_linear)
            if is_linear(x)
            for leaf in (x.weight, x.bias)
        ],
        network,
        [leaf for pair in new for leaf in pair],
    )


def stream_actor_critic(
    env: Environment,
    env_params: PyTree[Any],
    *,
    torso: Any = "mlp",
    features: int = 128,
    sparsity: float = 0.9,
    key: PRNGKeyArray,
) -> tuple[Network, Network]:
    """The paper's actor and critic for `StreamAC`: flatten the observation,
    `Linear` to `features`, LayerNorm (without learned scale or shift), leaky
    ReLU, then the torso, then the head; every `Linear` sparsely initialised
    (`sparse_init`).

    **Arguments:**

    - `env`, `env_params`: the environment, for its observation and action
      spaces.
    - `torso`: `"mlp"` (the default) is the paper's second hidden layer
      (`Linear`, LayerNorm, leaky ReLU, memoryless); any other name of
      `memrl_eqx.TORSOS` (e.g. `"rtrl_lru"`, an LRU trained by RTRL, for
      memory), a sequence model from `(time, features)` to `(time, features)`,
      or a function of a key returning one, as for [`memrl_eqx.network`][].
    - `features`: the width of the hidden layers (the paper's 128).
    - `sparsity`: the fraction of each unit's inputs cut at initialisation.
    - `key` (keyword only).

    **Returns:** `(actor, critic)`: the actor's head is `heads.Categorical` for
    discrete actions and `heads.Gaussian` for a 1-d box; the critic's is
    `heads.VNetwork`.
    """
    from .. import nn as mnn
    from .._agents import _action_space, make_torso
    from ..nn import heads
    from ._checks import check_torso

    kind, spec = _action_space(env, env_params)
    obs_dim = math.prod(env.observation_space(env_params).shape)

    def layer_norm():
        return eqx.nn.LayerNorm(features, use_weight=False, use_bias=False)

    def build(head: Callable[[PRNGKeyArray], eqx.Module], key) -> Network:
        k_embed, k_torso, k_head, k_init = jr.split(key, 4)
        extractor = mnn.FeatureExtractor(
            eqx.nn.Sequential(
                [
                    mnn.Flatten(),
                    mnn.Linear(obs_dim, features, key=k_embed),
                    layer_norm(),
                    _LeakyReLU(),
                ]
            )
        )
        if torso == "mlp":
            body = mnn.SequenceModelWrapper(
                eqx.nn.Sequential(
                    [
                        mnn.Linear(features, features, key=k_torso),
                        layer_norm(),
                        _LeakyReLU(),
                    ]
                )
            )
        elif isinstance(torso, str):
            body = make_torso(
                torso, in_features=features, features=features, key=k_torso
            )
        else:
            is_model = isinstance(torso, mnn.AbstractSequenceModel)
            body = torso if is_model or not callable(torso) else torso(k_torso)
            check_torso(
                "stream_actor_critic", body, in_features=features, features=features
            )
        network = mnn.Network(extractor, body, head(k_head))
        return sparse_init(network, sparsity=sparsity, key=k_init)

    if kind == "discrete":
        policy = lambda k: heads.Categorical(
            in_features=features, action_dim=spec, key=k
        )
    else:
        policy = lambda k: heads.Gaussian(
            in_features=features, action_dim=spec[0], key=k
        )
    value = lambda k: heads.VNetwork(in_features=features, key=k)
    k_actor, k_critic = jr.split(key)
    return build(policy, k_actor), build(value, k_critic)


def _train_impl(algo: StreamAC, state: StreamACState, num_updates: int):
    return lax.scan(lambda s, _: algo._update(s, None), state, None, length=num_updates)


# Counts traces of the jitted training loop (one per configuration; tested).
_train_traced = eqx.debug.assert_max_traces(_train_impl, max_traces=None)
_train = eqx.filter_jit(_train_traced)
