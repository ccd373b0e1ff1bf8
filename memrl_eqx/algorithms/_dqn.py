"""`DQN`: deep Q-learning with sequence replay; with a recurrent torso, R2D2."""

import math
from typing import Any

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
from ..nn import auxiliary_loss, clear_auxiliary, Network
from ._checks import check_networks
from ._evaluate import evaluate_policy
from ._exploration import epsilon_greedy, linear_schedule
from ._offpolicy import (
    Acting,
    check_replay_config,
    collect,
    episode_starts,
    start_carry,
    Transition,
)
from ._returns import inverse_value_rescale, n_step_targets, value_rescale
from ._rollout import (
    add_time_axis,
    batch_init_carry,
    burn_in,
    first_timestep,
    reset_envs,
)
from ._target import polyak_update


ScalarLike = float | Float[Array, ""]


class DQNConfig(eqx.Module):
    """Hyperparameters of `DQN`; every field has a default, so `DQNConfig()` is
    double DQN on single transitions. `DQNConfig.r2d2()` and `DQNConfig.drqn()`
    are the recurrent presets.

    Integers and switches fix array shapes and are static; floats may be JAX
    scalars, so a sweep over them is one `eqx.filter_vmap`.

    Acting and updates:
    - `num_envs` (16) parallel environments; `rollout_length` (1) steps of each
      between updates; `gradient_steps` (1) per update.
    - `epsilon_start` (1.0), `epsilon_end` (0.05), `epsilon_decay_steps` (10_000):
      ε of ε-greedy falls linearly over that many environment steps (warmup
      included).
    - `tau` (1.0) and `target_update_period` (250 updates): the target network
      moves `tau` of the way to the online one every period (1.0: a hard copy).

    Replay (a `SequenceReplay`):
    - `buffer_capacity` (10_000 steps per environment); `batch_size` (64
      sequences per gradient step).
    - `sequence_length` (1): steps trained on per sequence; `burn_in_length` (0):
      steps before them replayed without gradient from the stored carry, to refresh
      it (R2D2); `n_step` (1): the n of the n-step targets (a window holds
      `burn_in_length + sequence_length + n_step` steps).
    - `sampling` ("segments"): windows from any start, run from the carry stored
      with their first step; "tape": windows that start at an episode start (whole
      consecutive episodes, run from the initial carry: no stored state and no
      burn-in; Morad et al. 2024).
    - `prioritised` (False), `priority_exponent` (0.9), `importance_exponent` (0.6),
      `priority_eta` (0.9): R2D2's prioritised sequence replay, the priority of a
      sequence being `η max|δ| + (1 - η) mean|δ|`.

    Targets:
    - `gamma` (0.99); `double` (True): the online network picks the bootstrap
      action, the target network values it (van Hasselt et al. 2016);
      `value_rescaling` (False): learn $h$ of the return (R2D2), with
      `rescaling_epsilon` (1e-3).
    """

    num_envs: int = eqx.field(static=True, default=16)
    rollout_length: int = eqx.field(static=True, default=1)
    gradient_steps: int = eqx.field(static=True, default=1)
    buffer_capacity: int = eqx.field(static=True, default=10_000)
    batch_size: int = eqx.field(static=True, default=64)
    sequence_length: int = eqx.field(static=True, default=1)
    burn_in_length: int = eqx.field(static=True, default=0)
    n_step: int = eqx.field(static=True, default=1)
    target_update_period: int = eqx.field(static=True, default=250)
    sampling: str = eqx.field(static=True, default="segments")  # or "tape"
    prioritised: bool = eqx.field(static=True, default=False)
    double: bool = eqx.field(static=True, default=True)
    value_rescaling: bool = eqx.field(static=True, default=False)
    gamma: ScalarLike = 0.99
    tau: ScalarLike = 1.0
    epsilon_start: ScalarLike = 1.0
    epsilon_end: ScalarLike = 0.05
    epsilon_decay_steps: ScalarLike = 10_000.0
    priority_exponent: ScalarLike = 0.9
    importance_exponent: ScalarLike = 0.6
    priority_eta: ScalarLike = 0.9
    rescaling_epsilon: ScalarLike = 1e-3

    def __check_init__(self):
        check_replay_config(self, "DQNConfig")
        for name in ("gamma", "tau", "priority_eta"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"DQNConfig: `{name}` must lie in [0, 1]; got {value}."
                )

    @property
    def window_length(self) -> int:
        """Steps per replayed window: `burn_in_length + sequence_length + n_step`."""
        return self.burn_in_length + self.sequence_length + self.n_step

    @property
    def steps_per_update(self) -> int:
        """Environment steps between updates: `num_envs * rollout_length`."""
        return self.num_envs * self.rollout_length

    @classmethod
    def r2d2(cls, **overrides: Any) -> "DQNConfig":
        """R2D2's recipe (Kapturowski et al. 2019), scaled down for a CPU:
        sequences of 40 after a burn-in of 20, 5-step double-Q targets with value
        rescaling, prioritised replay (η = 0.9, α = 0.9, β = 0.6). Any field can
        be overridden."""
        preset = dict(
            sequence_length=40,
            burn_in_length=20,
            n_step=5,
            batch_size=32,
            rollout_length=4,
            buffer_capacity=5_000,
            prioritised=True,
            value_rescaling=True,
            target_update_period=100,
        )
        return cls(**{**preset, **overrides})

    @classmethod
    def drqn(cls, **overrides: Any) -> "DQNConfig":
        """DRQN (Hausknecht & Stone 2015): uniform replay of sequences run from
        the stored carry, one-step targets, no burn-in."""
        preset = dict(sequence_length=16, batch_size=32, rollout_length=4)
        return cls(**{**preset, **overrides})


class DQNState(eqx.Module):
    """The whole training state of `DQN`, a PyTree (vmappable, checkpointable).

    - `q_network`: the online [`memrl_eqx.nn.Network`][], the one trained and
      acted with (ε-greedily).
    - `target_network`: the slowly moving copy of `q_network` that values the
      bootstrap action (and picks it, without `double`); it moves every
      `target_update_period` updates (see
      [`memrl_eqx.algorithms.polyak_update`][]).
    - `opt_state`: the optimiser's state for `q_network`'s parameters.
    - `acting`: one entry per environment: its state, the next input and the
      online network's carry.
    - `replay`: the [`memrl_eqx.buffers.ReplayState`][] of the stored
      transitions, each with the online network's carry before its step.
    - `key`: the PRNG key of the next collection and update.
    - `step`: environment steps so far, over all environments (warmup
      included), an int32 scalar; ε is scheduled on it.
    - `update`: training updates so far (warmup excluded), an int32 scalar.
    """

    q_network: Network
    target_network: Network
    opt_state: PyTree[Any]
    acting: Acting
    replay: ReplayState
    key: PRNGKeyArray
    step: Int[Array, ""]
    update: Int[Array, ""]


class DQN(eqx.Module):
    """Deep Q-learning for discrete actions (Mnih et al. 2015), recurrent by
    construction: with a recurrent torso and `DQNConfig.r2d2()` it is R2D2
    (Kapturowski et al. 2019), with `DQNConfig.drqn()` DRQN; with a feed-forward
    torso (empty carry) and the defaults, double DQN.

    - Every stored step keeps the online network's carry before it. A replayed
      window starts from that stored carry (or, with tape sampling, from the
      initial carry at an episode start), replays `burn_in_length` steps without
      gradient to refresh it, and learns on the next `sequence_length` steps.
    - The target network runs over the *same* window from the same carry, so
      its state is aligned with the online network's step by step (the Flax
      original evaluated the next observation from the previous carry, one step
      stale).
    - n-step targets stop at episode boundaries: a termination bootstraps zero;
      a time limit bootstraps from the last in-episode observation, and the step
      cut by it is left out (its successor is not stored); see `n_step_targets`.

    **Arguments:** `config` (`DQNConfig`); `env` (a gymnax `Environment` with
    discrete actions), `env_params`; `q_network` (a `Network` with a Q head
    having `q_values` and `loss`, e.g. `heads.DiscreteQNetwork`; see
    `memrl_eqx.q_network`); `optimizer` (an optax transformation).
    """

    config: DQNConfig
    env: Environment = eqx.field(static=True)
    env_params: PyTree[Any]
    q_network: Network
    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def __init__(
        self,
        *,
        config: DQNConfig = DQNConfig(),
        env: Environment,
        env_params: PyTree[Any],
        q_network: Network,
        optimizer: optax.GradientTransformation,
    ):
        if not hasattr(env.action_space(env_params), "n"):
            raise ValueError(
                "DQN: the environment's action space must be discrete; got "
                f"{type(env.action_space(env_params)).__name__}."
            )
        check_networks("DQN", env, env_params, q_network=(q_network, "q"))
        if not isinstance(env, EpisodeStatistics):
            env = EpisodeStatistics(env)
        self.config = config
        self.env = env
        self.env_params = env_params
        self.q_network = q_network
        self.optimizer = optimizer

    @property
    def replay(self) -> SequenceReplay:
        """The `SequenceReplay` this configuration samples windows from."""
        cfg = self.config
        return SequenceReplay(
            num_envs=cfg.num_envs,
            capacity=cfg.buffer_capacity,
            sample_batch_size=cfg.batch_size,
            sequence_length=cfg.window_length,
            prioritised=cfg.prioritised,
            priority_exponent=cfg.priority_exponent,
        )

    # ------------------------------------------------------------------ init
    @eqx.filter_jit
    def init(self, key: PRNGKeyArray) -> DQNState:
        """A fresh state: environments reset, carries initial, replay empty."""
        key, reset_key = jr.split(key)
        n = self.config.num_envs
        obs, env_state = reset_envs(self.env, self.env_params, reset_key, n)
        timestep = first_timestep(obs, (), jnp.int32)
        carry = batch_init_carry(self.q_network, n)
        acting = Acting(env_state, timestep, carry)
        one = lambda x: x[0]
        example = Transition(
            timestep=jtu.tree_map(one, timestep),
            carry=jtu.tree_map(one, carry),
            action=jnp.zeros((), jnp.int32),
            reward=jnp.zeros((), jnp.float32),
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
        )
        params = eqx.filter(self.q_network, eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            opt_state = self.optimizer.init(params)
        return DQNState(
            q_network=self.q_network,
            target_network=self.q_network,
            opt_state=opt_state,
            acting=acting,
            replay=self.replay.init(example),
            key=key,
            step=jnp.zeros((), jnp.int32),
            update=jnp.zeros((), jnp.int32),
        )

    # ---------------------------------------------------------------- acting
    def _act(self, network: Network, epsilon: ScalarLike):
        def act(carry, timestep, key):
            carry, out = network(carry, add_time_axis(timestep))
            q = network.head.q_values(out)[0]
            return carry, epsilon_greedy(key, q, epsilon)

        return act

    def _collect(self, state: DQNState, epsilon: ScalarLike):
        key, collect_key = jr.split(state.key)
        acting, transitions, metrics = collect(
            self.env,
            self.env_params,
            self._act(state.q_network, epsilon),
            state.acting,
            collect_key,
            self.config.rollout_length,
        )
        state = eqx.tree_at(
            lambda s: (s.acting, s.replay, s.key, s.step),
            state,
            (
                acting,
                self.replay.add(state.replay, transitions),
                key,
                state.step + self.config.steps_per_update,
            ),
        )
        return state, metrics

    def warmup(self, state: DQNState, num_steps: int) -> DQNState:
        """Fill the replay with at least `num_steps` environment steps of
        uniformly random actions (ε = 1), before learning. (The count is traced,
        so warmups of any length share one compilation.)"""
        updates = _num_updates("DQN.warmup", num_steps, self.config.steps_per_update)
        return _warmup(self, state, jnp.asarray(updates, jnp.int32))

    # ---------------------------------------------------------------- losses
    def _sequence_loss(self, q_network, target_network, window: Transition, weight):
        """Loss, |TD errors| and validity of one replayed window."""
        cfg = self.config
        tape = cfg.sampling == "tape"
        carry = clear_auxiliary(start_carry(window, q_network.init_carry(), tape))
        online_carry, rest = burn_in(
            q_network, carry, window.timestep, cfg.burn_in_length
        )
        target_carry, _ = burn_in(
            target_network, carry, window.timestep, cfg.burn_in_length
        )
        cut = lambda x: x[cfg.burn_in_length :]
        action, reward = cut(window.action), cut(window.reward)
        terminated, truncated = cut(window.terminated), cut(window.truncated)
        online_carry, out = q_network(online_carry, rest)
        _, target_out = target_network(target_carry, rest)
        head = q_network.head
        q = head.q_values(out)
        q_target = lax.stop_gradient(head.q_values(target_out))
        if cfg.double:
            next_action = jnp.argmax(lax.stop_gradient(q), axis=-1)
        else:
            next_action = jnp.argmax(q_target, axis=-1)
        bootstrap = jnp.take_along_axis(q_target, next_action[:, None], -1)[:, 0]
        if cfg.value_rescaling:
            bootstrap = inverse_value_rescale(bootstrap, cfg.rescaling_epsilon)
        targets, valid = n_step_targets(
            reward, bootstrap, terminated, truncated, cfg.gamma, cfg.n_step
        )
        if cfg.value_rescaling:
            targets = value_rescale(targets, cfg.rescaling_epsilon)
        # Only the first `sequence_length` steps learn; the last n only serve
        # their targets (tape windows learn on every step with a full target).
        learn = jnp.arange(targets.shape[0]) < cfg.sequence_length
        valid = valid & learn
        mask = valid.astype(jnp.float32)
        losses = head.loss(out, action, targets)
        loss = weight * jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)
        q_taken = jnp.take_along_axis(q, action[:, None], -1)[:, 0]
        td = jnp.abs(lax.stop_gradient(q_taken) - targets) * mask
        return loss + auxiliary_loss(online_carry), (td, mask, q_taken)

    def _loss(self, q_network, target_network, sample):
        sample = constrain_batch(sample)  # split across devices by a sharded state
        per_sequence = jax.vmap(self._sequence_loss, in_axes=(None, None, 0, 0))
        loss, (td, mask, q) = per_sequence(
            q_network, target_network, sample.data, sample.weights
        )
        return jnp.mean(loss), (td, mask, q)

    def _start_mask(self, state: DQNState) -> Array | None:
        """Where windows may start: episode starts for tape sampling, else
        anywhere (None). Gradient steps change priorities, not the stored steps,
        so one mask serves all the gradient steps of an update."""
        if self.config.sampling == "tape":
            return episode_starts(state.replay.buffer.experience)
        return None

    def _gradient_step(
        self, state: DQNState, key: PRNGKeyArray, start_mask: Array | None
    ) -> tuple:
        cfg = self.config
        sample = self.replay.sample(
            state.replay,
            key,
            start_mask,
            cfg.importance_exponent if cfg.prioritised else 0.0,
        )
        grad_fn = eqx.filter_value_and_grad(self._loss, has_aux=True)
        (loss, (td, valid, q)), grads = grad_fn(
            state.q_network, state.target_network, sample
        )
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self.optimizer.update(
                eqx.filter(grads, eqx.is_inexact_array),
                state.opt_state,
                eqx.filter(state.q_network, eqx.is_inexact_array),
            )
        q_network = eqx.apply_updates(state.q_network, updates)
        replay = state.replay
        if cfg.prioritised:
            count = jnp.maximum(jnp.sum(valid, axis=1), 1.0)
            priority = cfg.priority_eta * jnp.max(td, axis=1) + (
                1 - cfg.priority_eta
            ) * (jnp.sum(td, axis=1) / count)
            replay = self.replay.set_priorities(
                replay, sample.rows, sample.starts, priority + 1e-6
            )
        state = eqx.tree_at(
            lambda s: (s.q_network, s.opt_state, s.replay),
            state,
            (q_network, opt_state, replay),
        )
        q_mean = jnp.sum(q * valid) / jnp.maximum(jnp.sum(valid), 1.0)
        return state, {"loss": loss, "q_value": q_mean}

    def _update(self, state: DQNState, _) -> tuple[DQNState, dict[str, Array]]:
        cfg = self.config
        epsilon = linear_schedule(
            state.step, cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_decay_steps
        )
        state, metrics = self._collect(state, epsilon)
        keys = jr.split(state.key, cfg.gradient_steps + 1)
        state = eqx.tree_at(lambda s: s.key, state, keys[0])
        mask = self._start_mask(state)
        nan = {"loss": jnp.nan, "q_value": jnp.nan}

        def learn(state):
            state, learned = lax.scan(
                lambda s, k: self._gradient_step(s, k, mask), state, keys[1:]
            )
            return state, jtu.tree_map(jnp.mean, learned)

        def skip(state):
            return state, jtu.tree_map(lambda x: jnp.asarray(x, jnp.float32), nan)

        state, learned = lax.cond(
            self.replay.can_sample(state.replay, mask), learn, skip, state
        )
        update = state.update + 1
        target = polyak_update(
            state.q_network,
            state.target_network,
            cfg.tau,
            update % cfg.target_update_period == 0,
        )
        state = eqx.tree_at(
            lambda s: (s.target_network, s.update), state, (target, update)
        )
        metrics = {**metrics, **learned, "epsilon": epsilon, "step": state.step}
        return state, metrics

    # ----------------------------------------------------------------- train
    def train(
        self, state: DQNState, num_steps: int
    ) -> tuple[DQNState, dict[str, Float[Array, " updates"]]]:
        """Train for at least `num_steps` environment steps (rounded up to whole
        updates of `config.steps_per_update`).

        Each update collects `rollout_length` steps per environment into the
        replay and, once it can sample, takes `gradient_steps` gradient steps.
        **Returns:** `(state, metrics)`, one entry per update: `"return"`,
        `"length"`, `"episodes"` (episodes ended during the update's steps; NaN
        if none), `"loss"`, `"q_value"` (NaN before learning starts),
        `"epsilon"`, `"step"`.
        """
        updates = _num_updates("DQN.train", num_steps, self.config.steps_per_update)
        with sharded_training(state):
            return _train(self, state, updates)

    # -------------------------------------------------------------- evaluate
    @eqx.filter_jit
    def evaluate(
        self, state: DQNState, key: PRNGKeyArray, num_episodes: int
    ) -> dict[str, Float[Array, " episodes"]]:
        """Run `num_episodes` greedy episodes from fresh environments and carries;
        `{"return": (num_episodes,), "length": (num_episodes,)}`. The replay is
        untouched."""
        network = state.q_network
        return evaluate_policy(
            self.env,
            self.env_params,
            self._act(network, 0.0),
            network.init_carry(),
            key,
            num_episodes,
        )


def _num_updates(name: str, num_steps: int, per_update: int) -> int:
    if not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(
            f"{name}: `num_steps` must be a positive integer; got {num_steps!r}."
        )
    return math.ceil(num_steps / per_update)


@eqx.filter_jit
def _train(algo: DQN, state: DQNState, num_updates: int):
    return lax.scan(lambda s, _: algo._update(s, None), state, None, length=num_updates)


@eqx.filter_jit
def _warmup(algo: DQN, state: DQNState, num_updates: Int[Array, ""]) -> DQNState:
    return lax.fori_loop(0, num_updates, lambda _, s: algo._collect(s, 1.0)[0], state)
