"""`SAC`: soft actor-critic for continuous actions with any torso, and the
machinery it shares with `SACD` (`AbstractSoftActorCritic`)."""

import abc
import dataclasses
import math
from typing import Any, Literal

import distrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from gymnax.environments.environment import Environment
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .._sharding import constrain_batch, sharded_training
from ..buffers import ReplayState, SequenceReplay
from ..envs import EpisodeStatistics
from ..nn import auxiliary_loss, clear_auxiliary, Network, Timestep
from ..nn.heads import SquashedGaussian, TwinContinuousQNetwork
from ._checks import check_networks
from ._evaluate import evaluate_policy
from ._offpolicy import (
    Acting,
    check_replay_config,
    collect,
    episode_starts,
    start_carry,
    Transition,
)
from ._returns import n_step_targets
from ._rollout import (
    add_time_axis,
    batch_init_carry,
    burn_in,
    first_timestep,
    reset_envs,
)
from ._target import polyak_update


ScalarLike = float | Float[Array, ""]


def _check_config(config: Any, name: str) -> None:
    """The checks shared by `SACConfig` and `SACDConfig`, beyond every replay
    method's."""
    check_replay_config(config, name)
    value = config.tau
    if isinstance(value, int | float) and not 0.0 < value <= 1.0:
        raise ValueError(f"{name}: `tau` must lie in (0, 1]; got {value}.")
    value = config.initial_alpha
    if isinstance(value, int | float) and not value > 0.0:
        raise ValueError(f"{name}: `initial_alpha` must be positive; got {value}.")
    value = config.target_entropy_scale
    if isinstance(value, int | float) and not math.isfinite(value):
        raise ValueError(f"{name}: `target_entropy_scale` must be finite; got {value}.")


class _SoftActorCriticConfig(eqx.Module):
    """The fields, checks and sizes `SACConfig` and `SACDConfig` share (each
    documents them); only `target_entropy_scale`'s default and meaning differ."""

    num_envs: int = eqx.field(static=True, default=8)
    rollout_length: int = eqx.field(static=True, default=1)
    gradient_steps: int = eqx.field(static=True, default=1)
    buffer_capacity: int = eqx.field(static=True, default=12_500)
    batch_size: int = eqx.field(static=True, default=256)
    sequence_length: int = eqx.field(static=True, default=1)
    burn_in_length: int = eqx.field(static=True, default=0)
    sampling: Literal["segments", "tape"] = eqx.field(static=True, default="segments")
    target_update_period: int = eqx.field(static=True, default=1)
    gamma: ScalarLike = 0.99
    tau: ScalarLike = 0.005
    target_entropy_scale: ScalarLike = 1.0
    initial_alpha: ScalarLike = 1.0

    def __check_init__(self):
        _check_config(self, type(self).__name__)

    @property
    def window_length(self) -> int:
        """Steps per stored window: `burn_in_length + sequence_length + 1`."""
        return self.burn_in_length + self.sequence_length + 1

    @property
    def steps_per_update(self) -> int:
        """Environment steps per update: `num_envs * rollout_length`."""
        return self.num_envs * self.rollout_length


class SACConfig(_SoftActorCriticConfig):
    """Hyperparameters of `SAC`; every field has a default, so `SACConfig()` works.

    Integers fix array shapes and are static; the floats may be JAX scalars, so
    that a sweep over them is one `eqx.filter_vmap`.

    - `num_envs` (8): parallel environments; `rollout_length` (1): steps per
      environment between updates, so an update collects
      `num_envs * rollout_length` steps; `gradient_steps` (1): gradient steps per
      update.
    - `buffer_capacity` (12_500): replay slots per environment (100k steps in
      all by default); `batch_size` (256): sequences per gradient step.
    - `sequence_length` (1): steps trained on per sequence (1 for a feed-forward
      agent); `burn_in_length` (0): steps before them that only refresh the
      stored carries (R2D2's burn-in; segments only). A stored window is
      `burn_in_length + sequence_length + 1` steps: the last one is the next
      observation of the last trained step.
    - `sampling` ("segments"): windows start anywhere, from the stored carries
      of their first step; "tape": windows start only at episode starts, from the
      initial carries.
    - `gamma` (0.99): discount. `tau` (0.005): Polyak rate of the target critic,
      updated after every gradient step of every `target_update_period` (1)-th
      update.
    - `target_entropy_scale` (1.0): the target entropy is
      `-target_entropy_scale * action_dim` (Haarnoja et al. 2018's heuristic at
      1.0). `initial_alpha` (1.0): the initial temperature.

    Training starts once the replay holds a whole window; fill it first with
    `SAC.warmup` (uniformly random actions).
    """


class SACState(eqx.Module):
    """The whole training state of `SAC` or `SACD`: a PyTree, so it can be
    vmapped over seeds, checkpointed with `eqx.tree_serialise_leaves`, and
    resumed exactly.

    - `actor`, `critic`, `target_critic` (the slowly moving copy of `critic`),
      `log_alpha` (the log temperature), `opt_state` (of all three);
    - `replay`: the `SequenceReplay`'s contents, `Transition`s whose `carry` is
      `(actor_carry, critic_carry)` before each step;
    - `acting`: environment states, next inputs and both carries, one per
      environment;
    - `key`: the PRNG key of the next collection and update;
    - `step`: environment steps so far (warm-up included); `update`: training
      updates so far.
    """

    actor: Network
    critic: Network
    target_critic: Network
    log_alpha: Float[Array, ""]
    opt_state: PyTree[Any]
    replay: ReplayState
    acting: Acting
    key: PRNGKeyArray
    step: Int[Array, ""]
    update: Int[Array, ""]


class _Terms(eqx.Module):
    """What the policy-specific part of the loss gives for one sequence of
    `T = sequence_length + 1` steps."""

    critic_out: Array  # the critic's output at o_t (SAC: at a_t); to `_critic_loss`
    soft_value: Float[Array, " T"]  # soft V of o_t from the target critic; no grad
    actor_objective: Float[Array, " T"]  # the actor's loss at o_t
    entropy: Float[Array, " T"]  # the policy's entropy at o_t (or an estimate)


class AbstractSoftActorCritic(eqx.Module):
    """Soft actor-critic with sequence replay; `SAC` and `SACD` fill in the
    policy-specific parts (how the soft value, the actor's objective and the
    entropy follow from the heads' outputs, and the evaluation action).

    One update steps every environment `rollout_length` times with the current
    policy (storing the actor's and the critic's carries of every step), adds the
    steps to the replay, then takes `gradient_steps` gradient steps (none while
    the replay cannot sample a window). Each gradient step samples `batch_size`
    windows and, per window:

    - starts the actor, the critic and the target critic from the stored carries
      (the target critic from the critic's) or, with tape sampling, from the
      initial carries; burns in over the first `burn_in_length` steps without
      gradient; then runs each torso once over the remaining steps;
    - regresses both critics, at the `sequence_length` trained steps, on
      $r_t + \\gamma (1 - \\mathrm{terminated}_t) V(o_{t+1})$ with the soft value
      $V$ of the target critic, where a step cut by a time limit has no target
      (its successor is the next episode's first observation) and is left out
      (shared `n_step_targets` with `n = 1`);
    - trains the actor on the soft objective against the critic (whose
      parameters and features get no gradient from it), and the temperature
      $\\alpha = e^{\\log\\alpha}$ on $\\log\\alpha\\,(H - \\bar H)$ with the
      policy's entropy $H$ (stop-gradient) and the target entropy $\\bar H$.

    The three losses (plus the auxiliary losses the actor's and the critic's
    carries keep, each added to its own network's loss) are summed and applied
    by one optimiser; each only reaches its own parameters. The target critic
    moves towards the critic by Polyak averaging after each gradient step.
    """

    config: eqx.AbstractVar[Any]
    env: eqx.AbstractVar[Environment]
    env_params: eqx.AbstractVar[PyTree[Any]]
    actor: eqx.AbstractVar[Network]
    critic: eqx.AbstractVar[Network]
    optimizer: eqx.AbstractVar[optax.GradientTransformation]

    # ------------------------------------------------- policy-specific parts
    @property
    @abc.abstractmethod
    def target_entropy(self) -> ScalarLike:
        """The entropy $\\bar H$ the temperature steers the policy towards."""

    @abc.abstractmethod
    def _terms(
        self,
        actor_head: eqx.Module,
        critic_head: eqx.Module,
        target_head: eqx.Module,
        actor_hidden: Float[Array, "T features"],
        critic_hidden: Float[Array, "T features"],
        target_hidden: Float[Array, "T features"],
        actions: Array,
        alpha: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> _Terms:
        """The policy-specific terms of one sequence, from the torsos' outputs."""

    @abc.abstractmethod
    def _critic_loss(
        self,
        critic_head: eqx.Module,
        critic_out: Array,
        actions: Array,
        targets: Float[Array, " T"],
    ) -> Float[Array, " T"]:
        """The critic's loss per step (both twins)."""

    @abc.abstractmethod
    def _q_taken(
        self, critic_head: eqx.Module, critic_out: Array, actions: Array
    ) -> Float[Array, " T"]:
        """`min(Q1, Q2)` of the taken actions, per step (for the metrics)."""

    @abc.abstractmethod
    def _evaluation_action(
        self,
        actor: Network,
        carry: PyTree[Array],
        timestep: Timestep,
        key: PRNGKeyArray,
    ) -> tuple[PyTree[Array], Array]:
        """The deterministic action at one step (leaves without time axis)."""

    # --------------------------------------------------------------- shared
    @property
    def replay(self) -> SequenceReplay:
        """The `SequenceReplay` this configuration samples windows from."""
        cfg = self.config
        return SequenceReplay(
            num_envs=cfg.num_envs,
            capacity=cfg.buffer_capacity,
            sample_batch_size=cfg.batch_size,
            sequence_length=cfg.window_length,
        )

    @property
    def _action_dtype(self):
        space = self.env.action_space(self.env_params)
        return jnp.int32 if hasattr(space, "n") else jnp.float32

    @eqx.filter_jit
    def init(self, key: PRNGKeyArray) -> SACState:
        """A fresh training state: environments reset, carries at their start,
        an empty replay, the target critic equal to the critic."""
        cfg = self.config
        key, reset_key = jr.split(key)
        obs, env_state = reset_envs(self.env, self.env_params, reset_key, cfg.num_envs)
        space = self.env.action_space(self.env_params)
        timestep = first_timestep(obs, space.shape, self._action_dtype)
        carry = (
            batch_init_carry(self.actor, cfg.num_envs),
            batch_init_carry(self.critic, cfg.num_envs),
        )
        example = Transition(
            timestep=jtu.tree_map(lambda x: x[0], timestep),
            carry=(self.actor.init_carry(), self.critic.init_carry()),
            action=jnp.zeros(space.shape, self._action_dtype),
            reward=jnp.zeros((), jnp.float32),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
        )
        log_alpha = jnp.log(jnp.asarray(cfg.initial_alpha, jnp.float32))
        params = eqx.filter((self.actor, self.critic, log_alpha), eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            opt_state = self.optimizer.init(params)
        return SACState(
            actor=self.actor,
            critic=self.critic,
            target_critic=self.critic,
            log_alpha=log_alpha,
            opt_state=opt_state,
            replay=self.replay.init(example),
            acting=Acting(env_state, timestep, carry),
            key=key,
            step=jnp.zeros((), jnp.int32),
            update=jnp.zeros((), jnp.int32),
        )

    def warmup(self, state: SACState, num_steps: int) -> SACState:
        """Fill the replay with at least `num_steps` environment steps (rounded up
        to whole rollouts of `num_envs * rollout_length`) of uniformly random
        actions. The networks still run on every step, so the stored carries are
        the ones the policy would have had."""
        if not isinstance(num_steps, int) or num_steps <= 0:
            raise ValueError(
                f"{type(self).__name__}.warmup: `num_steps` must be a positive "
                f"integer; got {num_steps!r}."
            )
        num_rollouts = math.ceil(num_steps / self.config.steps_per_update)
        return _warmup(self, state, num_rollouts)

    def train(
        self, state: SACState, num_steps: int
    ) -> tuple[SACState, dict[str, Float[Array, " updates"]]]:
        """Train for at least `num_steps` environment steps (rounded up to whole
        updates of `num_envs * rollout_length` steps).

        **Returns:** `(state, metrics)`; `metrics[name]` has one entry per update:
        `"return"`, `"length"` (means over the episodes completed during the
        update's rollout, NaN if none) and `"episodes"` (how many); `"step"`
        (environment steps so far); means over the update's gradient steps (NaN
        while the replay cannot sample, so no step was taken) of `"loss/critic"`
        (the twin critics' TD loss plus the critic's auxiliary loss),
        `"loss/actor"` (plus the actor's auxiliary loss), `"loss/temperature"`,
        `"loss/auxiliary"` (both networks' auxiliary losses, see
        `nn.auxiliary_loss`), `"alpha"` (the temperature used), `"entropy"` (of
        the policy on the replayed observations) and `"q_value"` (`min(Q1, Q2)`
        of the replayed actions).
        """
        if not isinstance(num_steps, int) or num_steps <= 0:
            raise ValueError(
                f"{type(self).__name__}.train: `num_steps` must be a positive "
                f"integer; got {num_steps!r}."
            )
        num_updates = math.ceil(num_steps / self.config.steps_per_update)
        with sharded_training(state):
            return _train(self, state, num_updates)

    def _act(self, actor: Network, critic: Network, random: bool):
        """`act(carry, timestep, key)` for `collect`: a policy sample (or a
        uniformly random action); both carries advance either way."""
        space = self.env.action_space(self.env_params)
        dtype = self._action_dtype

        def act(carry, timestep, key):
            actor_carry, critic_carry = carry
            sequence = add_time_axis(timestep)
            if random:
                actor_carry, _ = actor.encode(actor_carry, sequence)
                with jax.numpy_dtype_promotion("standard"):
                    action = jnp.asarray(space.sample(key)).astype(dtype)
            else:
                actor_carry, dist = actor(actor_carry, sequence)
                action = dist.sample(seed=key)[0]
            critic_carry, _ = critic.encode(critic_carry, sequence)
            return (actor_carry, critic_carry), action

        return act

    def _collect(
        self, state: SACState, random: bool
    ) -> tuple[SACState, dict[str, Float[Array, ""]]]:
        """One rollout of `rollout_length` steps per environment, into the replay."""
        cfg = self.config
        key, collect_key = jr.split(state.key)
        # Auxiliary statistics in the acting carries are sums that would grow
        # without bound; training clears the replayed ones anyway.
        acting = dataclasses.replace(
            state.acting, carry=clear_auxiliary(state.acting.carry)
        )
        act = self._act(state.actor, state.critic, random)
        acting, transitions, metrics = collect(
            self.env, self.env_params, act, acting, collect_key, cfg.rollout_length
        )
        state = dataclasses.replace(
            state,
            acting=acting,
            replay=self.replay.add(state.replay, transitions),
            key=key,
            step=state.step + cfg.steps_per_update,
        )
        return state, metrics

    def _sequence(
        self,
        actor: Network,
        critic: Network,
        target_critic: Network,
        window: Transition,
        alpha: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[tuple[PyTree[Array], PyTree[Array]], dict[str, Array]]:
        """The per-step terms of one window (leaves `(window_length, ...)`):
        `(actor_carry, critic_carry)` after it (for their auxiliary losses) and a
        dict of `(sequence_length,)` arrays: `"critic_loss"`, `"targets"`,
        `"valid"`, `"actor_objective"`, `"entropy"`, `"q_taken"`."""
        cfg = self.config
        length, skip = cfg.sequence_length, cfg.burn_in_length
        init = (actor.init_carry(), critic.init_carry())
        actor_carry, critic_carry = start_carry(window, init, cfg.sampling == "tape")
        timestep = window.timestep
        target_carry, _ = burn_in(target_critic, critic_carry, timestep, skip)
        critic_carry, _ = burn_in(critic, critic_carry, timestep, skip)
        actor_carry, timestep = burn_in(actor, actor_carry, timestep, skip)
        # Auxiliary losses count the steps after the burn-in only.
        actor_carry, actor_hidden = actor.encode(clear_auxiliary(actor_carry), timestep)
        critic_carry, critic_hidden = critic.encode(
            clear_auxiliary(critic_carry), timestep
        )
        _, target_hidden = target_critic.encode(target_carry, timestep)
        actions = window.action[skip:]
        terms = self._terms(
            actor.head,
            critic.head,
            target_critic.head,
            actor_hidden,
            critic_hidden,
            lax.stop_gradient(target_hidden),
            actions,
            alpha,
            key,
        )
        targets, valid = n_step_targets(
            window.reward[skip:],
            lax.stop_gradient(terms.soft_value),
            window.terminated[skip:],
            window.truncated[skip:],
            cfg.gamma,
            1,
        )
        trained = lambda x: x[:length]
        critic_out = jtu.tree_map(trained, terms.critic_out)
        out = {
            "critic_loss": self._critic_loss(
                critic.head, critic_out, trained(actions), trained(targets)
            ),
            "targets": trained(targets),
            "valid": trained(valid),
            "actor_objective": trained(terms.actor_objective),
            "entropy": trained(terms.entropy),
            "q_taken": self._q_taken(critic.head, critic_out, trained(actions)),
        }
        return (actor_carry, critic_carry), out

    def _loss(
        self,
        params: tuple[Network, Network, Float[Array, ""]],
        target_critic: Network,
        windows: Transition,
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        """The summed loss of a batch of windows (leaves `(batch, window, ...)`)
        and its parts."""
        actor, critic, log_alpha = params
        windows = constrain_batch(windows)  # split across devices by a sharded state
        alpha = lax.stop_gradient(jnp.exp(log_alpha))
        batch = windows.reward.shape[0]
        (actor_carry, critic_carry), out = jax.vmap(
            self._sequence, in_axes=(None, None, None, 0, None, 0)
        )(actor, critic, target_critic, windows, alpha, jr.split(key, batch))
        valid = out["valid"].astype(jnp.float32)
        count = jnp.maximum(jnp.sum(valid), 1.0)
        actor_auxiliary = auxiliary_loss(actor_carry)
        critic_auxiliary = auxiliary_loss(critic_carry)
        critic_loss = jnp.sum(out["critic_loss"] * valid) / count + critic_auxiliary
        actor_loss = jnp.mean(out["actor_objective"]) + actor_auxiliary
        entropy = jnp.mean(out["entropy"])
        temperature_loss = log_alpha * lax.stop_gradient(entropy - self.target_entropy)
        loss = critic_loss + actor_loss + temperature_loss
        aux = {
            "loss/critic": critic_loss,
            "loss/actor": actor_loss,
            "loss/temperature": temperature_loss,
            "loss/auxiliary": actor_auxiliary + critic_auxiliary,
            "alpha": alpha,
            "entropy": entropy,
            "q_value": jnp.sum(out["q_taken"] * valid) / count,
        }
        return loss, aux

    def _update(self, state: SACState, _) -> tuple[SACState, dict[str, Array]]:
        cfg = self.config
        replay = self.replay
        state, metrics = self._collect(state, random=False)
        start_mask = None
        if cfg.sampling == "tape":
            start_mask = episode_starts(state.replay.buffer.experience)
        update_target = state.update % cfg.target_update_period == 0
        key, train_key = jr.split(state.key)
        params, static = eqx.partition(
            (state.actor, state.critic, state.log_alpha), eqx.is_inexact_array
        )
        grad_fn = eqx.filter_value_and_grad(self._loss, has_aux=True)

        def gradient_step(carry, key):
            params, target_critic, opt_state = carry
            sample_key, loss_key = jr.split(key)
            sample = replay.sample(state.replay, sample_key, start_mask)
            (_, aux), grads = grad_fn(
                eqx.combine(params, static), target_critic, sample.data, loss_key
            )
            # optax, like the environments, runs under standard promotion.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = self.optimizer.update(
                    eqx.filter(grads, eqx.is_inexact_array), opt_state, params
                )
            params = eqx.apply_updates(params, updates)
            _, critic, _ = eqx.combine(params, static)
            target_critic = polyak_update(critic, target_critic, cfg.tau, update_target)
            return (params, target_critic, opt_state), aux

        def train(carry):
            carry, aux = lax.scan(
                gradient_step, carry, jr.split(train_key, cfg.gradient_steps)
            )
            return carry, {k: jnp.mean(v) for k, v in aux.items()}

        def skip(carry):
            shapes = jax.eval_shape(train, carry)[1]
            nan = {k: jnp.full(s.shape, jnp.nan, s.dtype) for k, s in shapes.items()}
            return carry, nan

        carry = (params, state.target_critic, state.opt_state)
        can_sample = replay.can_sample(state.replay, start_mask)
        (params, target_critic, opt_state), losses = lax.cond(
            can_sample, train, skip, carry
        )
        actor, critic, log_alpha = eqx.combine(params, static)
        state = dataclasses.replace(
            state,
            actor=actor,
            critic=critic,
            target_critic=target_critic,
            log_alpha=log_alpha,
            opt_state=opt_state,
            key=key,
            update=state.update + 1,
        )
        metrics = {**metrics, **losses, "step": state.step}
        return state, metrics

    @eqx.filter_jit
    def evaluate(
        self, state: SACState, key: PRNGKeyArray, num_episodes: int
    ) -> dict[str, Float[Array, " episodes"]]:
        """Run `num_episodes` episodes (one per parallel environment) with the
        deterministic policy, from fresh environments and carries. Returns
        `{"return": (num_episodes,), "length": (num_episodes,)}`."""
        actor = state.actor

        def act(carry, timestep, key):
            return self._evaluation_action(actor, carry, timestep, key)

        return evaluate_policy(
            self.env,
            self.env_params,
            act,
            actor.init_carry(),
            key,
            num_episodes,
            self._action_dtype,
        )


def _frozen(module: eqx.Module) -> eqx.Module:
    """`module` with its parameters stop-gradiented."""
    params, static = eqx.partition(module, eqx.is_inexact_array)
    return eqx.combine(lax.stop_gradient(params), static)


class SAC(AbstractSoftActorCritic):
    """Soft actor-critic (Haarnoja et al. 2018, with the learned temperature of
    "Soft Actor-Critic Algorithms and Applications") for continuous actions, with
    any torso, recurrent or feed-forward, and sequence replay.

    The actor is a `Network` with a `heads.SquashedGaussian` head (actions
    bounded to the action box), the critic a `Network` with a
    `heads.TwinContinuousQNetwork` head; `memrl_eqx.sac_networks` builds both.
    Each has its own torso; the stored carries of both are kept with every step
    (the Flax original started its critic from zeros on every sample).

    - Targets: $y_t = r_t + \\gamma (1 - \\mathrm{terminated}_t)\\big(\\min_i
      Q'_i(o_{t+1}, a') - \\alpha \\log\\pi(a' \\mid o_{t+1})\\big)$ with
      $a' \\sim \\pi(\\cdot \\mid o_{t+1})$ (reparameterised); steps cut by a time
      limit have none. The same sample at each step serves the target of the
      step before it and the actor's objective at it.
    - Actor: $\\alpha \\log\\pi(\\tilde a \\mid o_t) - \\min_i Q_i(o_t, \\tilde a)$;
      temperature: $\\log\\alpha\\,(-\\log\\pi(\\tilde a \\mid o_t) - \\bar H)$ with
      $\\bar H = -$ `target_entropy_scale` $\\cdot$ `action_dim`.
    - `evaluate` acts with the mean action through the tanh (temperature 0).

    See `AbstractSoftActorCritic` for the update. `init`, `warmup`, `train` and
    `evaluate` are pure and jitted, so `eqx.filter_vmap` over seeds works.

    **Arguments:** `config` (`SACConfig`), `env` (a gymnax `Environment` with a
    1-d `Box` action space), `env_params`, `actor`, `critic`, `optimizer` (an
    optax transformation, applied to the actor, the critic and the log
    temperature together).
    """

    config: SACConfig
    env: Environment = eqx.field(static=True)
    env_params: PyTree[Any]
    actor: Network
    critic: Network
    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def __init__(
        self,
        *,
        config: SACConfig = SACConfig(),
        env: Environment,
        env_params: PyTree[Any],
        actor: Network,
        critic: Network,
        optimizer: optax.GradientTransformation,
    ):
        space = env.action_space(env_params)
        if hasattr(space, "n") or len(getattr(space, "shape", ())) != 1:
            raise ValueError(
                "SAC: `env` must have a 1-d Box action space (use `SACD` for "
                f"discrete actions); got {type(space).__name__} with shape "
                f"{getattr(space, 'shape', None)}."
            )
        builder = "memrl_eqx.sac_networks"
        networks = dict(
            actor=(actor, "policy", SquashedGaussian, builder),
            critic=(critic, "twin_q", TwinContinuousQNetwork, builder),
        )
        check_networks("SAC", env, env_params, **networks)
        if not isinstance(env, EpisodeStatistics):
            env = EpisodeStatistics(env)
        self.config = config
        self.env = env
        self.env_params = env_params
        self.actor = actor
        self.critic = critic
        self.optimizer = optimizer

    @property
    def target_entropy(self) -> ScalarLike:
        """$\\bar H = -$ `target_entropy_scale` $\\cdot$ `action_dim`."""
        return -self.config.target_entropy_scale * self.actor.head.action_dim

    def _terms(
        self,
        actor_head: eqx.Module,
        critic_head: eqx.Module,
        target_head: eqx.Module,
        actor_hidden: Float[Array, "T features"],
        critic_hidden: Float[Array, "T features"],
        target_hidden: Float[Array, "T features"],
        actions: Float[Array, "T action_dim"],
        alpha: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> _Terms:
        dist: distrax.Distribution = actor_head(actor_hidden)
        sampled, log_prob = dist.sample_and_log_prob(seed=key)
        # The actor's objective sees the critic, but must not train it.
        frozen = _frozen(critic_head)
        q_sampled = frozen.value(frozen(lax.stop_gradient(critic_hidden), sampled))
        next_q = target_head.value(
            target_head(target_hidden, lax.stop_gradient(sampled))
        )
        log_prob_sg = lax.stop_gradient(log_prob)
        return _Terms(
            critic_out=critic_head(critic_hidden, actions),
            soft_value=lax.stop_gradient(next_q - alpha * log_prob_sg),
            actor_objective=alpha * log_prob - q_sampled,
            entropy=-log_prob_sg,
        )

    def _critic_loss(
        self,
        critic_head: eqx.Module,
        critic_out: Float[Array, "T 2"],
        actions: Float[Array, "T action_dim"],
        targets: Float[Array, " T"],
    ) -> Float[Array, " T"]:
        return critic_head.loss(critic_out, targets)

    def _q_taken(
        self,
        critic_head: eqx.Module,
        critic_out: Float[Array, "T 2"],
        actions: Float[Array, "T action_dim"],
    ) -> Float[Array, " T"]:
        return critic_head.value(critic_out)

    def _evaluation_action(
        self,
        actor: Network,
        carry: PyTree[Array],
        timestep: Timestep,
        key: PRNGKeyArray,
    ) -> tuple[PyTree[Array], Float[Array, " action_dim"]]:
        # Temperature 0: the mean action through the tanh (the head floors the
        # scale, so the sample is the mean to float precision).
        carry, dist = actor(carry, add_time_axis(timestep), temperature=0.0)
        return carry, dist.sample(seed=key)[0]


def _warmup_impl(
    algo: AbstractSoftActorCritic, state: SACState, num_rollouts: int
) -> SACState:
    def rollout(state, _):
        state, _ = algo._collect(state, random=True)
        return state, None

    state, _ = lax.scan(rollout, state, None, length=num_rollouts)
    return state


def _train_impl(algo: AbstractSoftActorCritic, state: SACState, num_updates: int):
    return lax.scan(lambda s, _: algo._update(s, None), state, None, length=num_updates)


_warmup = eqx.filter_jit(_warmup_impl)
# Counts traces of the jitted training loop (one per configuration; tested).
_train_traced = eqx.debug.assert_max_traces(_train_impl, max_traces=None)
_train = eqx.filter_jit(_train_traced)
