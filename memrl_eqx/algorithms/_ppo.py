"""`PPO`: proximal policy optimisation with any torso, recurrent or not."""

import dataclasses
import math
from typing import Any, ClassVar

import distrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from .._sharding import constrain_batch, sharded_training
from ..envs import EpisodeStatistics
from ..nn import auxiliary_loss, clear_auxiliary, Network, Timestep
from ._checks import check_networks
from ._evaluate import evaluate_policy
from ._returns import gae
from ._rollout import (
    add_time_axis,
    batch_init_carry,
    burn_in,
    episode_info,
    episode_metrics,
    first_timestep,
    reset_envs,
    step_once,
)


ScalarLike = float | Float[Array, ""]


class PPOConfig(eqx.Module):
    """Hyperparameters of `PPO`; every field has a default, so `PPOConfig()` works.

    Integers fix array shapes and are static. Floats may be given as JAX scalars,
    so that a sweep over them is one `eqx.filter_vmap`.

    - `num_envs` (32): parallel environments; `num_steps` (128): steps per
      environment per rollout; so one update uses `num_envs * num_steps` steps.
    - `num_minibatches` (4): whole environment trajectories are split into this
      many minibatches (it must divide `num_envs`), so recurrent torsos replay
      each sequence from the carry it started the rollout with.
    - `update_epochs` (4): passes over the rollout per update.
    - `gamma` (0.99), `gae_lambda` (0.95): discount and GAE $\\lambda$.
    - `clip_coefficient` (0.2): the ratio clip $\\epsilon$, also used to clip
      the value loss when `clip_value_loss` (True).
    - `entropy_coefficient` (0.01), `value_coefficient` (0.5): loss weights.
    - `normalize_advantage` (True): per-minibatch advantage normalisation.
    - `reward_scale` (1.0): rewards are multiplied by it for the value targets
      and advantages (not for the reported returns); e.g. 0.1 on Pendulum, whose
      returns are in the thousands.
    - `clip_actions` (True): continuous actions are clipped to the action box
      before the environment sees them; the policy's own (unclipped) sample is
      what is stored and scored. No effect for discrete actions.
    - `burn_in_length` (0): recurrent burn-in. The state keeps the last
      `burn_in_length` steps of the previous rollout and the carries from before
      them; every minibatch sequence first replays those steps (without
      gradient) with the current parameters, so the carry its loss starts from
      is the current networks' own, not the stale one of the rollout. Every new
      step is still trained on. At most `num_steps` (the steps come from the
      previous rollout alone).
    """

    num_envs: int = eqx.field(static=True, default=32)
    num_steps: int = eqx.field(static=True, default=128)
    num_minibatches: int = eqx.field(static=True, default=4)
    update_epochs: int = eqx.field(static=True, default=4)
    gamma: ScalarLike = 0.99
    gae_lambda: ScalarLike = 0.95
    clip_coefficient: ScalarLike = 0.2
    entropy_coefficient: ScalarLike = 0.01
    value_coefficient: ScalarLike = 0.5
    normalize_advantage: bool = eqx.field(static=True, default=True)
    clip_value_loss: bool = eqx.field(static=True, default=True)
    reward_scale: ScalarLike = 1.0
    clip_actions: bool = eqx.field(static=True, default=True)
    burn_in_length: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"PPOConfig: `{name}` must be a positive integer; got {value!r}."
                )
        length = self.burn_in_length
        if not isinstance(length, int) or not 0 <= length <= self.num_steps:
            raise ValueError(
                "PPOConfig: `burn_in_length` must be an integer in [0, `num_steps` "
                f"= {self.num_steps}] (the burn-in steps are the end of the previous "
                f"rollout); got {length!r}."
            )
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"PPOConfig: `num_minibatches` ({self.num_minibatches}) must divide "
                f"`num_envs` ({self.num_envs}): minibatches are whole environment "
                "trajectories."
            )
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"PPOConfig: `{name}` must lie in [0, 1]; got {value}."
                )
        if isinstance(self.reward_scale, int | float) and not self.reward_scale > 0:
            raise ValueError(
                f"PPOConfig: `reward_scale` must be positive; got {self.reward_scale}."
            )

    @property
    def batch_size(self) -> int:
        """Environment steps per update: `num_envs * num_steps`."""
        return self.num_envs * self.num_steps


class PPOState(eqx.Module):
    """The whole training state of `PPO`: a PyTree, so it can be vmapped over
    seeds, checkpointed with `eqx.tree_serialise_leaves`, and resumed exactly.

    `actor` and `critic` are the current [`memrl_eqx.nn.Network`][]s,
    `opt_state` the optimiser's state for both, `key` the PRNG key of the next
    rollout and update, and `step` the environment steps so far over all
    environments (an int32 scalar, `num_envs * num_steps` per update).

    Leaves with a leading `num_envs` axis: `env_state`, `timestep` (the next
    input, one step per environment), `actor_carry`, `critic_carry`.

    With `burn_in_length = L > 0`: `burn_in_timestep`, the last `L` inputs of the
    previous rollout (leaves `(num_envs, L, ...)`; they lead straight into
    `timestep`), and `burn_in_actor_carry`, `burn_in_critic_carry`, the carries
    from before them. Before the first rollout they are `L` copies of the first
    timestep and the initial carries: the first rollout starts with a reset,
    which discards whatever carry the burn-in produces. With `L = 0` all three
    are None.
    """

    actor: Network
    critic: Network
    opt_state: PyTree[Any]
    env_state: PyTree[Any]
    timestep: Timestep
    actor_carry: PyTree[Array]
    critic_carry: PyTree[Array]
    key: PRNGKeyArray
    step: Int[Array, ""]
    burn_in_timestep: Timestep | None = None
    burn_in_actor_carry: PyTree[Array] | None = None
    burn_in_critic_carry: PyTree[Array] | None = None

    # Leading axis `num_envs`: split across devices by `memrl_eqx.shard`.
    env_batched_fields: ClassVar[tuple[str, ...]] = (
        "env_state",
        "timestep",
        "actor_carry",
        "critic_carry",
        "burn_in_timestep",
        "burn_in_actor_carry",
        "burn_in_critic_carry",
    )


class _Rollout(eqx.Module):
    timestep: Timestep  # leaves (time, env, ...)
    action: Array
    log_prob: Float[Array, "*time env"]
    value: Float[Array, "*time env"]
    reward: Float[Array, "*time env"]
    terminated: Bool[Array, "*time env"]
    truncated: Bool[Array, "*time env"]
    final_value: Float[Array, "*time env"]
    info: dict[str, Array]


class PPO(eqx.Module):
    """Proximal policy optimisation (Schulman et al. 2017), for discrete or
    continuous actions.

    The actor and the critic are separate `Network`s whose torsos may be any
    sequence model: recurrent (`RNN`, `Memoroid`, ...) or feed-forward
    (`SequenceModelWrapper`, empty carry). There is one PPO: the recurrent case
    is the general one.

    - Each rollout stores the carries its environments started with, and the
      update replays every environment's whole trajectory from that carry, with
      the episode starts inside it as resets. With `config.burn_in_length > 0`
      that carry is first refreshed with the current parameters over the end of
      the previous rollout (see `PPOConfig`).
    - Time limits are not terminations: where an episode is truncated, the
      target bootstraps from the critic's value of `info["final_observation"]`
      (computed with the carry of that episode); only `terminated` zeroes it.
    - Actions: a `Discrete` space (a head such as `heads.Categorical`) or a 1-d
      `Box` (`heads.Gaussian`, or `heads.SquashedGaussian` with the box's bounds).
      A continuous action is stored and scored (its log-probability) as sampled;
      the environment receives it clipped to the box when `config.clip_actions`,
      which changes nothing for a `SquashedGaussian` inside the box.
    - The entropy bonus uses the policy's exact entropy where it has one. A
      tanh-squashed Gaussian (a distrax `Transformed` whose bijector has a
      non-constant Jacobian) has none: its entropy `H(base) + E[log|det J(u)|]`
      is estimated at one reparameterised sample `u` of the base normal per step,
      unbiased and with a pathwise gradient. (`-log π(a)` of the stored action
      would not do: its expected gradient under the rollout policy is zero.)
    - `init`, `train` and `evaluate` are pure and jitted, so
      `eqx.filter_vmap` over seeds (or over array-valued hyperparameters) works.

    **Arguments:** `config` (`PPOConfig`), `env` (any gymnax `Environment` whose
    action space is discrete or a 1-d box), `env_params`, `actor` (a `Network`
    with a policy head such as `heads.Categorical` or `heads.Gaussian`), `critic`
    (a `Network` with `heads.VNetwork`), `optimizer` (an optax transformation,
    applied to actor and critic together).
    """

    config: PPOConfig
    env: Environment = eqx.field(static=True)
    env_params: PyTree[Any]
    actor: Network
    critic: Network
    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def __init__(
        self,
        *,
        config: PPOConfig = PPOConfig(),
        env: Environment,
        env_params: PyTree[Any],
        actor: Network,
        critic: Network,
        optimizer: optax.GradientTransformation,
    ):
        space = env.action_space(env_params)
        if not _is_discrete(space) and len(getattr(space, "shape", ())) != 1:
            raise ValueError(
                "PPO: the environment's action space must be discrete or a 1-d box; "
                f"got {type(space).__name__} with shape "
                f"{getattr(space, 'shape', None)}."
            )
        networks = dict(actor=(actor, "policy"), critic=(critic, "value"))
        check_networks("PPO", env, env_params, **networks)
        if not isinstance(env, EpisodeStatistics):
            env = EpisodeStatistics(env)
        self.config = config
        self.env = env
        self.env_params = env_params
        self.actor = actor
        self.critic = critic
        self.optimizer = optimizer

    # ------------------------------------------------------------------ init
    @eqx.filter_jit
    def init(self, key: PRNGKeyArray) -> PPOState:
        """A fresh training state: environments reset, carries at their start."""
        key, reset_key = jr.split(key)
        env_state, timestep = self._reset(reset_key)
        actor_carry = self._init_carries(self.actor)
        critic_carry = self._init_carries(self.critic)
        params = eqx.filter((self.actor, self.critic), eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            opt_state = self.optimizer.init(params)
        length = self.config.burn_in_length
        if length:
            # Any steps would do before the first rollout, which starts with a
            # reset: copies of the first timestep, from the initial carries.
            burn_in_state = dict(
                burn_in_timestep=jtu.tree_map(
                    lambda x: jnp.repeat(x[:, None], length, axis=1), timestep
                ),
                burn_in_actor_carry=actor_carry,
                burn_in_critic_carry=critic_carry,
            )
        else:
            burn_in_state = {}
        return PPOState(
            actor=self.actor,
            critic=self.critic,
            opt_state=opt_state,
            env_state=env_state,
            timestep=timestep,
            actor_carry=actor_carry,
            critic_carry=critic_carry,
            key=key,
            step=jnp.zeros((), jnp.int32),
            **burn_in_state,
        )

    # ---------------------------------------------------- how envs are batched
    # Hooks for algorithms built on this one (the multi-agent PPOs, whose agents
    # are extra streams): a *stream* is one row of the timesteps and carries,
    # `config.num_envs * _streams_per_env` of them, grouped by environment.
    @property
    def _streams_per_env(self) -> int:
        """Streams (rows of timesteps and carries) per environment: 1."""
        return 1

    def _reset(self, key: PRNGKeyArray) -> tuple[PyTree[Any], Timestep]:
        """Reset every environment: `(env_state, timestep)`, one row per stream."""
        obs, env_state = reset_envs(
            self.env, self.env_params, key, self.config.num_envs
        )
        space = self.env.action_space(self.env_params)
        action_dtype = jnp.int32 if _is_discrete(space) else jnp.float32
        return env_state, first_timestep(obs, space.shape, action_dtype)

    def _step(self, key: PRNGKeyArray, env_state: PyTree[Any], action: Array):
        """Step every environment with one action per stream; what `step_once`
        returns, one row per stream."""
        return step_once(
            self.env, self.env_params, key, env_state, self._env_action(action)
        )

    def _over_streams(self, fn, *networks: Network):
        """`fn(*networks, *rows)` mapped over the streams (the leading axis of
        every `rows` argument), the networks shared by all streams."""
        return jax.vmap(lambda *rows: fn(*networks, *rows))

    def _init_carries(self, network: Network) -> PyTree[Array]:
        """`network`'s initial carry, one row per stream."""
        return batch_init_carry(network, self.config.num_envs)

    def _actor_input(self, timestep: Timestep) -> Timestep:
        """What the actor sees of a (stored) timestep: all of it."""
        return timestep

    def _critic_input(self, timestep: Timestep) -> Timestep:
        """What the critic sees of a (stored) timestep: all of it."""
        return timestep

    # ----------------------------------------------------------------- train
    def train(
        self, state: PPOState, num_steps: int
    ) -> tuple[PPOState, dict[str, Float[Array, " updates"]]]:
        """Train for at least `num_steps` environment steps (rounded up to whole
        updates of `config.batch_size` steps).

        **Returns:** `(state, metrics)`; `metrics[name]` has one entry per update:
        `"return"` and `"length"` (mean over the episodes completed during that
        update's rollout, NaN if none completed), `"step"` (environment steps so
        far), the losses (`"loss"` the total, `"loss/policy"`, `"loss/value"`,
        `"loss/auxiliary"`: the auxiliary losses the networks keep in their carries,
        such as an `MoE` router's load balancing, see `nn.auxiliary_loss`),
        `"entropy"`, `"approx_kl"`, `"clip_fraction"`.
        """
        if not isinstance(num_steps, int) or num_steps <= 0:
            raise ValueError(
                f"PPO.train: `num_steps` must be a positive integer; got {num_steps!r}."
            )
        num_updates = math.ceil(num_steps / self.config.batch_size)
        with sharded_training(state):
            return _train(self, state, num_updates)

    def _env_action(self, action: Array) -> Array:
        """The action the environment receives: continuous actions clipped to the
        action box when `config.clip_actions`; otherwise `action` itself."""
        space = self.env.action_space(self.env_params)
        if _is_discrete(space) or not self.config.clip_actions:
            return action
        bound = lambda b: jnp.broadcast_to(jnp.asarray(b, action.dtype), action.shape)
        return jnp.clip(action, bound(space.low), bound(space.high))

    def _rollout(
        self, state: PPOState
    ) -> tuple[PPOState, _Rollout, Array, tuple[PyTree[Array], PyTree[Array]]]:
        """`num_steps` steps of every environment. Also returns the carries from
        before the last `burn_in_length` steps (the rollout's start carries if
        `burn_in_length` is 0)."""
        cfg = self.config
        burn_in_start = cfg.num_steps - cfg.burn_in_length

        def step(carry, t):
            state, burn_in_carries = carry
            if cfg.burn_in_length:
                burn_in_carries = jtu.tree_map(
                    lambda new, old: jnp.where(t == burn_in_start, new, old),
                    (state.actor_carry, state.critic_carry),
                    burn_in_carries,
                )
            key, act_key, env_key = jr.split(state.key, 3)
            act = self._over_streams(_act, state.actor, state.critic)
            (actor_carry, critic_carry), (action, log_prob, value) = act(
                state.actor_carry,
                state.critic_carry,
                self._actor_input(state.timestep),
                self._critic_input(state.timestep),
                jr.split(act_key, cfg.num_envs * self._streams_per_env),
            )
            env_state, timestep, reward, terminated, truncated, info = self._step(
                env_key, state.env_state, action
            )
            final_value = lax.cond(
                jnp.any(truncated),
                lambda: self._over_streams(_value, state.critic)(
                    critic_carry, self._critic_input(info["final_timestep"])
                ),
                lambda: jnp.zeros_like(reward),
            )
            data = _Rollout(
                timestep=state.timestep,
                action=action,
                log_prob=log_prob,
                value=value,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                final_value=final_value,
                info=episode_info(info),
            )
            state = eqx.tree_at(
                lambda s: (
                    s.env_state,
                    s.timestep,
                    s.actor_carry,
                    s.critic_carry,
                    s.key,
                ),
                state,
                (env_state, timestep, actor_carry, critic_carry, key),
            )
            return (state, burn_in_carries), data

        carries = (state.actor_carry, state.critic_carry)
        (state, burn_in_carries), rollout = lax.scan(
            step, (state, carries), jnp.arange(cfg.num_steps)
        )
        last_value = self._over_streams(_value, state.critic)(
            state.critic_carry, self._critic_input(state.timestep)
        )
        return state, rollout, last_value, burn_in_carries

    def _refresh_carries(
        self,
        actor: Network,
        critic: Network,
        actor_carry: PyTree[Array],
        critic_carry: PyTree[Array],
        burn_in_timestep: Timestep | None,
    ) -> tuple[PyTree[Array], PyTree[Array]]:
        """The carries a minibatch's loss starts from (leading axis: sequences).

        Without burn-in, the given carries. With it, the carries after running
        `actor` and `critic` (no gradient) over `burn_in_timestep` (leaves
        `(sequence, burn_in_length, ...)`) from the given carries, with their
        auxiliary statistics cleared."""
        if burn_in_timestep is None:
            return actor_carry, critic_carry
        length = self.config.burn_in_length

        def refresh(network, carry, timestep):
            run = lambda net, c, t: burn_in(net, c, t, length)[0]
            return clear_auxiliary(self._over_streams(run, network)(carry, timestep))

        return (
            refresh(actor, actor_carry, self._actor_input(burn_in_timestep)),
            refresh(critic, critic_carry, self._critic_input(burn_in_timestep)),
        )

    def _loss(self, params, batch, key):
        actor, critic = params
        cfg = self.config
        batch = constrain_batch(batch)  # split across devices by a sharded state
        actor_carry, critic_carry, burn_in_timestep, data, advantages, returns = batch
        actor_carry, critic_carry = self._refresh_carries(
            actor, critic, actor_carry, critic_carry, burn_in_timestep
        )
        timestep = data.timestep
        keys = jr.split(key, advantages.shape[0])
        actor_carry, (log_prob, entropy) = self._over_streams(_policy_terms, actor)(
            actor_carry, self._actor_input(timestep), data.action, keys
        )
        critic_carry, values = self._over_streams(_call, critic)(
            critic_carry, self._critic_input(timestep)
        )
        entropy = jnp.mean(entropy)
        log_ratio = log_prob - data.log_prob
        ratio = jnp.exp(log_ratio)
        if cfg.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        clipped = jnp.clip(ratio, 1 - cfg.clip_coefficient, 1 + cfg.clip_coefficient)
        policy_loss = -jnp.mean(jnp.minimum(ratio * advantages, clipped * advantages))
        value_loss = (values - returns) ** 2
        if cfg.clip_value_loss:
            clipped_values = data.value + jnp.clip(
                values - data.value, -cfg.clip_coefficient, cfg.clip_coefficient
            )
            value_loss = jnp.maximum(value_loss, (clipped_values - returns) ** 2)
        value_loss = 0.5 * jnp.mean(value_loss)
        # Losses the networks accumulate in their carries (e.g. an MoE router's
        # load balancing), over this minibatch: its carries were cleared before.
        auxiliary = auxiliary_loss(actor_carry) + auxiliary_loss(critic_carry)
        loss = (
            policy_loss
            + cfg.value_coefficient * value_loss
            - cfg.entropy_coefficient * entropy
            + auxiliary
        )
        aux = {
            "loss": loss,
            "loss/policy": policy_loss,
            "loss/value": value_loss,
            "loss/auxiliary": auxiliary,
            "entropy": entropy,
            "approx_kl": jnp.mean((ratio - 1) - log_ratio),
            "clip_fraction": jnp.mean(
                (jnp.abs(ratio - 1) > cfg.clip_coefficient).astype(jnp.float32)
            ),
        }
        return loss, aux

    def _update(self, state: PPOState, _) -> tuple[PPOState, dict[str, Array]]:
        cfg = self.config
        # Auxiliary statistics in the carries count this rollout only.
        state = dataclasses.replace(
            state,
            actor_carry=clear_auxiliary(state.actor_carry),
            critic_carry=clear_auxiliary(state.critic_carry),
        )
        if cfg.burn_in_length:
            # The loss starts from the carries before the previous rollout's last
            # steps, refreshed over those steps with the current parameters.
            actor_carry0 = state.burn_in_actor_carry
            critic_carry0 = state.burn_in_critic_carry
        else:
            actor_carry0, critic_carry0 = state.actor_carry, state.critic_carry
        burn_in_timestep = state.burn_in_timestep
        state, rollout, last_value, burn_in_carries = self._rollout(state)

        # Targets, per environment over time: (time, env) arrays.
        next_values = jnp.concatenate([rollout.value[1:], last_value[None]])
        next_values = jnp.where(rollout.truncated, rollout.final_value, next_values)
        done = rollout.terminated | rollout.truncated
        advantages, returns = jax.vmap(
            gae, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1
        )(
            rollout.reward * cfg.reward_scale,
            rollout.value,
            next_values,
            rollout.terminated,
            done,
            cfg.gamma,
            cfg.gae_lambda,
        )

        # Minibatches are whole environment trajectories: env-major sequences.
        env_major = lambda x: jnp.swapaxes(x, 0, 1)
        data = jtu.tree_map(env_major, eqx.filter(rollout, eqx.is_array))
        if cfg.burn_in_length:
            # The next update burns in over this rollout's last steps.
            state = dataclasses.replace(
                state,
                burn_in_timestep=jtu.tree_map(
                    lambda x: x[:, -cfg.burn_in_length :], data.timestep
                ),
                burn_in_actor_carry=burn_in_carries[0],
                burn_in_critic_carry=burn_in_carries[1],
            )
        batch = (actor_carry0, critic_carry0, burn_in_timestep, data)
        batch = batch + (env_major(advantages), env_major(returns))
        grad_fn = eqx.filter_value_and_grad(self._loss, has_aux=True)

        def minibatch_step(carry, minibatch_and_key):
            params, opt_state = carry
            minibatch, key = minibatch_and_key
            (_, aux), grads = grad_fn(params, minibatch, key)
            # optax, like the environments, runs under standard promotion.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = self.optimizer.update(
                    eqx.filter(grads, eqx.is_inexact_array),
                    opt_state,
                    eqx.filter(params, eqx.is_inexact_array),
                )
            return (eqx.apply_updates(params, updates), opt_state), aux

        def epoch(carry, key):
            # Whole environments: the streams of one stay together.
            permutation = jr.permutation(key, cfg.num_envs)
            by_env = lambda x: x.reshape((cfg.num_envs, -1) + x.shape[1:])
            shuffled = jtu.tree_map(
                lambda x: by_env(x)[permutation].reshape(x.shape), batch
            )
            minibatches = jtu.tree_map(
                lambda x: x.reshape((cfg.num_minibatches, -1) + x.shape[1:]),
                shuffled,
            )
            # Keys for sampled entropy estimates (see `PPO`), unused otherwise.
            keys = jr.split(jr.fold_in(key, 1), cfg.num_minibatches)
            return lax.scan(minibatch_step, carry, (minibatches, keys))

        key, epoch_key = jr.split(state.key)
        params, static = eqx.partition((state.actor, state.critic), eqx.is_array)
        (params, opt_state), aux = lax.scan(
            lambda c, k: epoch(c, k),
            (params, state.opt_state),
            jr.split(epoch_key, cfg.update_epochs),
        )
        actor, critic = eqx.combine(params, static)
        state = eqx.tree_at(
            lambda s: (s.actor, s.critic, s.opt_state, s.key, s.step),
            state,
            (actor, critic, opt_state, key, state.step + cfg.batch_size),
        )
        metrics = {k: jnp.mean(v) for k, v in aux.items()}
        metrics.update(episode_metrics(rollout.info))
        metrics["step"] = state.step
        return state, metrics

    # -------------------------------------------------------------- evaluate
    @eqx.filter_jit
    def evaluate(
        self,
        state: PPOState,
        key: PRNGKeyArray,
        num_episodes: int,
        deterministic: bool = True,
    ) -> dict[str, Float[Array, " episodes"]]:
        """Run `num_episodes` episodes (one per parallel environment) with the
        current policy, from fresh environments and carries: its mode when
        `deterministic` (for a tanh-squashed Gaussian, the squashed mean), else a
        sample; continuous actions clipped as in training. Returns
        `{"return": (num_episodes,), "length": (num_episodes,)}`.
        """
        actor = state.actor

        def act(carry, timestep, key):
            carry, dist = actor(carry, add_time_axis(timestep))
            action = _mode(dist) if deterministic else dist.sample(seed=key)
            return carry, self._env_action(action[0])

        return evaluate_policy(
            self.env, self.env_params, act, actor.init_carry(), key, num_episodes
        )


def _is_discrete(space) -> bool:
    """Whether a gymnax action space is discrete (has a number of actions `n`)."""
    return hasattr(space, "n")


def _has_exact_entropy(dist: distrax.Distribution) -> bool:
    """False for a transformed distribution whose bijector's Jacobian is not
    constant (a tanh-squashed Gaussian): distrax has no entropy or mode for it."""
    return not (
        isinstance(dist, distrax.Transformed) and not dist.bijector.is_constant_log_det
    )


def _entropy(dist: distrax.Distribution, key: PRNGKeyArray) -> Array:
    """The entropy of `dist` per step: exact where distrax has it; otherwise (a
    transformed distribution, `y = f(u)`) `H(u) + log|det J_f(u)|` at one
    reparameterised sample `u`, an unbiased estimate of `H(y)`."""
    if _has_exact_entropy(dist):
        return dist.entropy()
    u = dist.distribution.sample(seed=key)
    return dist.distribution.entropy() + dist.bijector.forward_log_det_jacobian(u)


def _mode(dist: distrax.Distribution) -> Array:
    """The deterministic action: the mode, or for a transformed distribution
    without one, the transformed mode of its base (`tanh(mean)`, rescaled)."""
    if _has_exact_entropy(dist):
        return dist.mode()
    return dist.bijector.forward(dist.distribution.mode())


def _policy_terms(actor, carry, timestep, action, key):
    """One sequence: `(carry, (log_prob, entropy))`, each `(time,)`."""
    carry, dist = actor(carry, timestep)
    return carry, (dist.log_prob(action), _entropy(dist, key))


def _act(
    actor, critic, actor_carry, critic_carry, actor_timestep, critic_timestep, key
):
    actor_carry, dist = actor(actor_carry, add_time_axis(actor_timestep))
    critic_carry, value = critic(critic_carry, add_time_axis(critic_timestep))
    # The log-probability is `log_prob` of the action, as in the loss (not the
    # one `sample_and_log_prob` may give), so the first ratio is exactly 1.
    action = dist.sample(seed=key)
    return (actor_carry, critic_carry), (action[0], dist.log_prob(action)[0], value[0])


def _call(network, carry, timestep):
    return network(carry, timestep)


def _value(critic, carry, timestep) -> Float[Array, ""]:
    _, value = critic(carry, add_time_axis(timestep))
    return value[0]


def _train_impl(algo: PPO, state: PPOState, num_updates: int):
    return lax.scan(lambda s, _: algo._update(s, None), state, None, length=num_updates)


# Counts traces of the jitted training loop (one per configuration; tested).
_train_traced = eqx.debug.assert_max_traces(_train_impl, max_traces=None)
_train = eqx.filter_jit(_train_traced)
