"""`PQN`: parallelised Q-learning with λ-returns, no replay and no target network."""

import dataclasses
import math
from typing import Any, ClassVar

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
from ..nn.heads import DiscreteQNetwork
from ._checks import check_networks
from ._evaluate import evaluate_policy
from ._exploration import epsilon_greedy, linear_schedule
from ._returns import lambda_returns
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


class PQNConfig(eqx.Module):
    """Hyperparameters of `PQN`; every field has a default, so `PQNConfig()` works.

    Integers fix array shapes and are static. The other fields may be given as
    JAX scalars, so that a sweep over them is one `eqx.filter_vmap`.

    - `num_envs` (32): parallel environments; `num_steps` (32): steps per
      environment per rollout (the paper's Atari value); one update uses
      `num_envs * num_steps` steps.
    - `num_minibatches` (4): whole environment trajectories are split into this
      many minibatches (it must divide `num_envs`), so recurrent torsos replay
      each sequence from the carry it started the rollout with.
    - `update_epochs` (2): passes over the rollout per update (the paper's
      Atari value).
    - `gamma` (0.99): discount. `td_lambda` (0.65): the λ of the Q(λ) targets
      (the paper's Atari value; 0 gives one-step Q-learning targets, and the
      paper's code uses 0.95 on CartPole).
    - `epsilon_start` (1.0), `epsilon_end` (0.05), `epsilon_decay_steps`
      (100_000): ε of the ε-greedy behaviour policy moves linearly from
      `epsilon_start` to `epsilon_end` over the first `epsilon_decay_steps`
      environment steps (counted over all environments), then stays. The paper
      decays ε over a fraction of the whole run (10-20%); 100_000 is 20% of its
      CartPole budget.
    - `reward_scale` (1.0): rewards are multiplied by it in the targets (the
      paper's code uses 0.1 on CartPole); the episode returns in the metrics are
      unscaled.

    The learning rate, its schedule and gradient clipping belong to the optax
    `optimizer` given to `PQN` (the paper: RAdam, clipping at global norm 10).
    """

    num_envs: int = eqx.field(static=True, default=32)
    num_steps: int = eqx.field(static=True, default=32)
    num_minibatches: int = eqx.field(static=True, default=4)
    update_epochs: int = eqx.field(static=True, default=2)
    gamma: ScalarLike = 0.99
    td_lambda: ScalarLike = 0.65
    epsilon_start: ScalarLike = 1.0
    epsilon_end: ScalarLike = 0.05
    epsilon_decay_steps: int | ScalarLike | Int[Array, ""] = 100_000
    reward_scale: ScalarLike = 1.0

    def __check_init__(self):
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"PQNConfig: `{name}` must be a positive integer; got {value!r}."
                )
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"PQNConfig: `num_minibatches` ({self.num_minibatches}) must divide "
                f"`num_envs` ({self.num_envs}): minibatches are whole environment "
                "trajectories."
            )
        for name in ("gamma", "td_lambda", "epsilon_start", "epsilon_end"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"PQNConfig: `{name}` must lie in [0, 1]; got {value}."
                )
        value = self.epsilon_decay_steps
        if isinstance(value, int | float) and not value > 0:
            raise ValueError(
                "PQNConfig: `epsilon_decay_steps` must be positive (environment "
                f"steps); got {value}."
            )

    @property
    def batch_size(self) -> int:
        """Environment steps per update: `num_envs * num_steps`."""
        return self.num_envs * self.num_steps


class PQNState(eqx.Module):
    """The whole training state of `PQN`: a PyTree, so it can be vmapped over
    seeds, checkpointed with `eqx.tree_serialise_leaves`, and resumed exactly.

    `q_network` is the current [`memrl_eqx.nn.Network`][] (there is no target
    network), `opt_state` the optimiser's state for it, `key` the PRNG key of
    the next rollout and update, and `step` the environment steps so far over
    all environments (an int32 scalar); ε is scheduled on it.

    Leaves with a leading `num_envs` axis: `env_state`, `timestep` (the next
    input, one step per environment) and `carry` (the Q-network's).
    """

    q_network: Network
    opt_state: PyTree[Any]
    env_state: PyTree[Any]
    timestep: Timestep
    carry: PyTree[Array]
    key: PRNGKeyArray
    step: Int[Array, ""]

    # Leading axis `num_envs`: split across devices by `memrl_eqx.shard`.
    env_batched_fields: ClassVar[tuple[str, ...]] = ("env_state", "timestep", "carry")


class _Rollout(eqx.Module):
    timestep: Timestep  # leaves (time, env, ...)
    action: Int[Array, "*time env"]
    q_taken: Float[Array, "*time env"]  # Q(o_t, a_t) while acting
    value: Float[Array, "*time env"]  # max_a Q(o_t, a) while acting
    reward: Float[Array, "*time env"]
    terminated: Bool[Array, "*time env"]
    truncated: Bool[Array, "*time env"]
    final_value: Float[Array, "*time env"]  # max_a Q(final observation)
    epsilon: Float[Array, "*time"]
    info: dict[str, Array]


class PQN(eqx.Module):
    """Parallelised Q-network (Gallici et al. 2024, "Simplifying Deep Temporal
    Difference Learning"): Q(λ) from many parallel environments, with neither a
    replay buffer nor a target network; a `LayerNorm` in the network keeps it
    stable (build it with `memrl_eqx.q_network(..., layer_norm=True)`).

    - Each rollout acts ε-greedily and records the Q-values it acted with. The
      Q(λ) targets (shared `lambda_returns`, bootstrapping from
      $\\max_a Q(o_{t+1}, a)$) are computed once per rollout from those values, as
      in the paper, then regressed on for `update_epochs` passes.
    - Like `PPO`, each rollout stores the carries its environments started with,
      and the update replays every environment's whole trajectory from that
      carry, with the episode starts inside it as resets. The torso may be any
      sequence model, recurrent or feed-forward.
    - Time limits are not terminations: where an episode is truncated, the
      target bootstraps from $\\max_a Q$ of `info["final_observation"]` (with the
      carry of that episode); only `terminated` zeroes it.
    - `init`, `train` and `evaluate` are pure and jitted, so `eqx.filter_vmap`
      over seeds (or over array-valued hyperparameters) works.

    **Arguments:** `config` (`PQNConfig`), `env` (any gymnax `Environment` with a
    discrete action space), `env_params`, `q_network` (a `Network` with a
    `heads.DiscreteQNetwork` head), `optimizer` (an optax transformation).
    """

    config: PQNConfig
    env: Environment = eqx.field(static=True)
    env_params: PyTree[Any]
    q_network: Network
    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def __init__(
        self,
        *,
        config: PQNConfig = PQNConfig(),
        env: Environment,
        env_params: PyTree[Any],
        q_network: Network,
        optimizer: optax.GradientTransformation,
    ):
        if not isinstance(q_network, Network) or not isinstance(
            q_network.head, DiscreteQNetwork
        ):
            head = getattr(q_network, "head", None)
            raise ValueError(
                "PQN: `q_network` must be a `Network` with a `heads.DiscreteQNetwork` "
                "head (Q(λ) targets are scalar returns), e.g. "
                "`memrl_eqx.q_network(env, env_params, layer_norm=True, key=key)`; "
                f"got {type(q_network).__name__} with head {type(head).__name__}."
            )
        if not hasattr(env.action_space(env_params), "n"):
            raise ValueError(
                "PQN: `env` must have a discrete action space; got "
                f"{type(env.action_space(env_params)).__name__}."
            )
        check_networks("PQN", env, env_params, q_network=(q_network, "q"))
        if not isinstance(env, EpisodeStatistics):
            env = EpisodeStatistics(env)
        self.config = config
        self.env = env
        self.env_params = env_params
        self.q_network = q_network
        self.optimizer = optimizer

    # ------------------------------------------------------------------ init
    @eqx.filter_jit
    def init(self, key: PRNGKeyArray) -> PQNState:
        """A fresh training state: environments reset, carries at their start."""
        key, reset_key = jr.split(key)
        n = self.config.num_envs
        obs, env_state = reset_envs(self.env, self.env_params, reset_key, n)
        action_shape = self.env.action_space(self.env_params).shape
        params = eqx.filter(self.q_network, eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            opt_state = self.optimizer.init(params)
        return PQNState(
            q_network=self.q_network,
            opt_state=opt_state,
            env_state=env_state,
            timestep=first_timestep(obs, action_shape, jnp.int32),
            carry=batch_init_carry(self.q_network, n),
            key=key,
            step=jnp.zeros((), jnp.int32),
        )

    # ----------------------------------------------------------------- train
    def train(
        self, state: PQNState, num_steps: int
    ) -> tuple[PQNState, dict[str, Float[Array, " updates"]]]:
        """Train for at least `num_steps` environment steps (rounded up to whole
        updates of `config.batch_size` steps).

        **Returns:** `(state, metrics)`; `metrics[name]` has one entry per update:
        `"return"`, `"length"` (means over the episodes completed during that
        update's rollout, NaN if none completed) and `"episodes"` (how many),
        `"step"` (environment steps so far), `"loss"` (the total: `"loss/td"`, the
        mean of `½ (Q(o, a) - G^λ)²`, plus `"loss/auxiliary"`, the auxiliary
        losses the network keeps in its carry, see `nn.auxiliary_loss`),
        `"q_value"` (mean Q-value of the actions taken in the rollout) and
        `"epsilon"` (mean ε of the rollout).
        """
        if not isinstance(num_steps, int) or num_steps <= 0:
            raise ValueError(
                f"PQN.train: `num_steps` must be a positive integer; got {num_steps!r}."
            )
        num_updates = math.ceil(num_steps / self.config.batch_size)
        with sharded_training(state):
            return _train(self, state, num_updates)

    def _rollout(self, state: PQNState) -> tuple[PQNState, _Rollout, Array]:
        cfg = self.config
        network = state.q_network

        def step(loop, index):
            env_state, timestep, carry, key = loop
            key, act_key, env_key = jr.split(key, 3)
            epsilon = linear_schedule(
                state.step + index * cfg.num_envs,
                cfg.epsilon_start,
                cfg.epsilon_end,
                jnp.asarray(cfg.epsilon_decay_steps, jnp.float32),
            )
            next_carry, q_values = jax.vmap(_q_values, in_axes=(None, 0, 0))(
                network, carry, timestep
            )
            action = epsilon_greedy(act_key, q_values, epsilon)
            env_state, next_timestep, reward, terminated, truncated, info = step_once(
                self.env, self.env_params, env_key, env_state, action
            )
            # Where a time limit cut the episode, the target bootstraps from the
            # final observation, seen as the episode's next step: with its carry,
            # the action and reward that led there, and no reset.
            final_timestep = info["final_timestep"]
            final_value = lax.cond(
                jnp.any(truncated),
                lambda: jnp.max(
                    jax.vmap(_q_values, in_axes=(None, 0, 0))(
                        network, next_carry, final_timestep
                    )[1],
                    axis=-1,
                ),
                lambda: jnp.zeros_like(reward),
            )
            data = _Rollout(
                timestep=timestep,
                action=action,
                q_taken=jnp.take_along_axis(q_values, action[:, None], axis=-1)[:, 0],
                value=jnp.max(q_values, axis=-1),
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                final_value=final_value,
                epsilon=epsilon,
                info=episode_info(info),
            )
            return (env_state, next_timestep, next_carry, key), data

        # The scan carries arrays only; the network is a constant of the rollout.
        loop = (state.env_state, state.timestep, state.carry, state.key)
        loop, rollout = lax.scan(step, loop, jnp.arange(cfg.num_steps))
        env_state, timestep, carry, key = loop
        _, last_q = jax.vmap(_q_values, in_axes=(None, 0, 0))(network, carry, timestep)
        state = eqx.tree_at(
            lambda s: (s.env_state, s.timestep, s.carry, s.key),
            state,
            (env_state, timestep, carry, key),
        )
        return state, rollout, jnp.max(last_q, axis=-1)

    def _targets(
        self,
        reward: Float[Array, "time env"],
        value: Float[Array, "time env"],
        final_value: Float[Array, "time env"],
        terminated: Bool[Array, "time env"],
        truncated: Bool[Array, "time env"],
        last_value: Float[Array, " env"],
    ) -> Float[Array, "time env"]:
        """Q(λ) targets of a rollout from its acting-time values: `value[t]` is
        $\\max_a Q(o_t, a)$, `final_value[t]` the same for the final observation
        where step `t` was truncated, `last_value` for the observation after the
        rollout."""
        cfg = self.config
        next_values = jnp.concatenate([value[1:], last_value[None]])
        next_values = jnp.where(truncated, final_value, next_values)
        return jax.vmap(lambda_returns, in_axes=(1, 1, 1, 1, None, None), out_axes=1)(
            cfg.reward_scale * reward,
            next_values,
            terminated,
            terminated | truncated,
            cfg.gamma,
            cfg.td_lambda,
        )

    def _loss(self, network: Network, batch):
        batch = constrain_batch(batch)  # split across devices by a sharded state
        carry, timestep, action, targets = batch
        carry, out = jax.vmap(network)(carry, timestep)
        td_loss = jnp.mean(network.head.loss(out, action, targets))
        # Losses the network accumulates in its carry (e.g. an MoE router's load
        # balancing), over this minibatch: its carries were cleared before.
        auxiliary = auxiliary_loss(carry)
        loss = td_loss + auxiliary
        return loss, {"loss": loss, "loss/td": td_loss, "loss/auxiliary": auxiliary}

    def _update(self, state: PQNState, _) -> tuple[PQNState, dict[str, Array]]:
        cfg = self.config
        # Auxiliary statistics in the carry count this rollout only.
        state = dataclasses.replace(state, carry=clear_auxiliary(state.carry))
        carry0 = state.carry
        state, rollout, last_value = self._rollout(state)
        targets = self._targets(
            rollout.reward,
            rollout.value,
            rollout.final_value,
            rollout.terminated,
            rollout.truncated,
            last_value,
        )

        # Minibatches are whole environment trajectories: env-major sequences.
        env_major = lambda x: jnp.swapaxes(x, 0, 1)
        batch = (
            carry0,
            jtu.tree_map(env_major, rollout.timestep),
            env_major(rollout.action),
            env_major(targets),
        )
        grad_fn = eqx.filter_value_and_grad(self._loss, has_aux=True)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            (_, aux), grads = grad_fn(eqx.combine(params, static), minibatch)
            # optax, like the environments, runs under standard promotion.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = self.optimizer.update(
                    eqx.filter(grads, eqx.is_inexact_array), opt_state, params
                )
            return (eqx.apply_updates(params, updates), opt_state), aux

        def epoch(carry, key):
            permutation = jr.permutation(key, cfg.num_envs)
            minibatches = jtu.tree_map(
                lambda x: x[permutation].reshape(
                    (cfg.num_minibatches, -1) + x.shape[1:]
                ),
                batch,
            )
            return lax.scan(minibatch_step, carry, minibatches)

        key, epoch_key = jr.split(state.key)
        params, static = eqx.partition(state.q_network, eqx.is_inexact_array)
        (params, opt_state), aux = lax.scan(
            epoch, (params, state.opt_state), jr.split(epoch_key, cfg.update_epochs)
        )
        state = eqx.tree_at(
            lambda s: (s.q_network, s.opt_state, s.key, s.step),
            state,
            (
                eqx.combine(params, static),
                opt_state,
                key,
                state.step + cfg.batch_size,
            ),
        )
        metrics = {k: jnp.mean(v) for k, v in aux.items()}
        metrics.update(episode_metrics(rollout.info))
        metrics["q_value"] = jnp.mean(rollout.q_taken)
        metrics["epsilon"] = jnp.mean(rollout.epsilon)
        metrics["step"] = state.step
        return state, metrics

    # -------------------------------------------------------------- evaluate
    @eqx.filter_jit
    def evaluate(
        self,
        state: PQNState,
        key: PRNGKeyArray,
        num_episodes: int,
        epsilon: ScalarLike = 0.0,
    ) -> dict[str, Float[Array, " episodes"]]:
        """Run `num_episodes` episodes (one per parallel environment) with the
        greedy policy of the current Q-network (ε-greedy if `epsilon` > 0), from
        fresh environments and carries. Returns
        `{"return": (num_episodes,), "length": (num_episodes,)}`.
        """
        network = state.q_network

        def act(carry, timestep, key):
            carry, q_values = _q_values(network, carry, timestep)
            return carry, epsilon_greedy(key, q_values, epsilon)

        return evaluate_policy(
            self.env, self.env_params, act, network.init_carry(), key, num_episodes
        )


def _q_values(
    network: Network, carry: PyTree[Array], timestep: Timestep
) -> tuple[PyTree[Array], Float[Array, " actions"]]:
    """One step of one environment: the new carry and the action values."""
    carry, out = network(carry, add_time_axis(timestep))
    return carry, network.head.q_values(out)[0]


def _train_impl(algo: PQN, state: PQNState, num_updates: int):
    # Scan over the arrays of the state only: a network may hold non-array leaves
    # (e.g. the activation of an `eqx.nn.Lambda`), which `lax.scan` rejects.
    dynamic, static = eqx.partition(state, eqx.is_array)

    def update(dynamic, _):
        state, metrics = algo._update(eqx.combine(dynamic, static), None)
        return eqx.filter(state, eqx.is_array), metrics

    dynamic, metrics = lax.scan(update, dynamic, None, length=num_updates)
    return eqx.combine(dynamic, static), metrics


# Counts traces of the jitted training loop (one per configuration; tested).
_train_traced = eqx.debug.assert_max_traces(_train_impl, max_traces=None)
_train = eqx.filter_jit(_train_traced)
