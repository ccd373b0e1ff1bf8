"""`SACD`: soft actor-critic for discrete actions (Christodoulou 2019), with any
torso."""

import math
from typing import Any

import distrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import optax
from gymnax.environments.environment import Environment
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ..envs import EpisodeStatistics
from ..nn import Network, Timestep
from ..nn.heads import Categorical
from ..nn.heads._q import TwinDiscreteQNetwork
from ._checks import check_networks
from ._rollout import add_time_axis
from ._sac import (
    _SoftActorCriticConfig,
    _Terms,
    AbstractSoftActorCritic,
    ScalarLike,
)


class SACDConfig(_SoftActorCriticConfig):
    """Hyperparameters of `SACD`; every field has a default, so `SACDConfig()`
    works. The fields are `SACConfig`'s; only `target_entropy_scale` differs, in
    its default and in what it scales.

    Integers fix array shapes and are static; the floats may be JAX scalars, so
    that a sweep over them is one `eqx.filter_vmap`.

    - `num_envs` (8): parallel environments; `rollout_length` (1): steps per
      environment between updates, so an update collects
      `num_envs * rollout_length` steps; `gradient_steps` (1): gradient steps per
      update.
    - `buffer_capacity` (12_500): replay slots per environment; `batch_size`
      (256): sequences per gradient step.
    - `sequence_length` (1): steps trained on per sequence (1 for a feed-forward
      agent); `burn_in_length` (0): steps before them that only refresh the
      stored carries (segments only). A stored window is
      `burn_in_length + sequence_length + 1` steps.
    - `sampling` ("segments"): windows start anywhere, from the stored carries
      of their first step; "tape": windows start only at episode starts, from the
      initial carries.
    - `gamma` (0.99): discount. `tau` (0.005): Polyak rate of the target critic,
      updated after every gradient step of every `target_update_period` (1)-th
      update.
    - `initial_alpha` (1.0): the initial temperature $\\alpha$.
    - `target_entropy_scale` (0.3): the target entropy is
      `target_entropy_scale * log(num_actions)`, a fraction of the uniform
      policy's. Christodoulou (2019) uses 0.98 and CleanRL's Atari runs 0.89; with
      few actions either keeps the policy so close to uniform that the
      temperature grows without bound (on CartPole, 2 actions, in our runs:
      α > 100 and diverging critics after 50k steps at 0.98, α ≈ 28 and rising
      at 0.89). With the learning test's settings, 0.5 learns CartPole but its
      policy once collapsed after solving it (from 500 to ~115 for 20k steps);
      0.3 (0.21 nats with 2 actions, a policy of about 95/5) solved it and held
      on three seeds.
    """

    target_entropy_scale: ScalarLike = 0.3


class SACD(AbstractSoftActorCritic):
    """Soft actor-critic for discrete actions (Christodoulou 2019, "Soft
    Actor-Critic for Discrete Action Settings"), with any torso, recurrent or
    feed-forward, and sequence replay.

    The actor is a `Network` with a `heads.Categorical` head, the critic a
    `Network` with a `TwinDiscreteQNetwork` head (Q of every action, twice);
    `memrl_eqx.sac_networks` builds both. Every expectation over the policy is
    exact, a sum over the actions, rather than a sampled estimate:

    - Targets: $y_t = r_t + \\gamma (1 - \\mathrm{terminated}_t) V(o_{t+1})$ with
      $V(o) = \\sum_a \\pi(a \\mid o)\\big(\\min_i Q'_i(o, a) - \\alpha \\log\\pi(a
      \\mid o)\\big)$ from the target critic; steps cut by a time limit have none.
    - Actor: $\\sum_a \\pi(a \\mid o_t)\\big(\\alpha \\log\\pi(a \\mid o_t) - \\min_i
      Q_i(o_t, a)\\big)$, the critic's values stop-gradiented.
    - Temperature: $\\log\\alpha\\,(H(\\pi(\\cdot \\mid o_t)) - \\bar H)$ with the
      exact entropy and $\\bar H$ = `target_entropy_scale` $\\cdot \\log$
      `num_actions`.
    - `evaluate` acts greedily: the most probable action.

    See `AbstractSoftActorCritic` for the update (shared with `SAC`). `init`,
    `warmup`, `train` and `evaluate` are pure and jitted, so `eqx.filter_vmap`
    over seeds works.

    **Arguments:** `config` (`SACDConfig`), `env` (a gymnax `Environment` with a
    discrete action space), `env_params`, `actor`, `critic`, `optimizer` (an
    optax transformation, applied to the actor, the critic and the log
    temperature together).
    """

    config: SACDConfig
    env: Environment = eqx.field(static=True)
    env_params: PyTree[Any]
    actor: Network
    critic: Network
    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def __init__(
        self,
        *,
        config: SACDConfig = SACDConfig(),
        env: Environment,
        env_params: PyTree[Any],
        actor: Network,
        critic: Network,
        optimizer: optax.GradientTransformation,
    ):
        space = env.action_space(env_params)
        if not hasattr(space, "n"):
            raise ValueError(
                "SACD: `env` must have a discrete action space (use `SAC` for "
                f"continuous actions); got {type(space).__name__}."
            )
        builder = "memrl_eqx.sac_networks"
        networks = dict(
            actor=(actor, "policy", Categorical, builder),
            critic=(critic, "twin_q", TwinDiscreteQNetwork, builder),
        )
        check_networks("SACD", env, env_params, **networks)
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
        """$\\bar H$ = `target_entropy_scale` $\\cdot \\log$ `num_actions`."""
        return self.config.target_entropy_scale * math.log(self.actor.head.action_dim)

    def _terms(
        self,
        actor_head: eqx.Module,
        critic_head: eqx.Module,
        target_head: eqx.Module,
        actor_hidden: Float[Array, "T features"],
        critic_hidden: Float[Array, "T features"],
        target_hidden: Float[Array, "T features"],
        actions: Int[Array, " T"],
        alpha: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> _Terms:
        del key  # every expectation over the policy is exact
        dist: distrax.Categorical = actor_head(actor_hidden)
        log_probs = jax.nn.log_softmax(dist.logits, axis=-1)
        probs = jnp.exp(log_probs)
        critic_out = critic_head(critic_hidden)
        # The critic's values enter the actor's objective without gradient.
        q = lax.stop_gradient(critic_head.q_values(critic_out))
        next_q = target_head.q_values(target_head(target_hidden))
        probs_sg, log_probs_sg = lax.stop_gradient((probs, log_probs))
        return _Terms(
            critic_out=critic_out,
            soft_value=jnp.sum(probs_sg * (next_q - alpha * log_probs_sg), axis=-1),
            actor_objective=jnp.sum(probs * (alpha * log_probs - q), axis=-1),
            entropy=-jnp.sum(probs_sg * log_probs_sg, axis=-1),
        )

    def _critic_loss(
        self,
        critic_head: eqx.Module,
        critic_out: Float[Array, "T action_dim 2"],
        actions: Int[Array, " T"],
        targets: Float[Array, " T"],
    ) -> Float[Array, " T"]:
        return critic_head.loss(critic_out, actions, targets)

    def _q_taken(
        self,
        critic_head: eqx.Module,
        critic_out: Float[Array, "T action_dim 2"],
        actions: Int[Array, " T"],
    ) -> Float[Array, " T"]:
        q = critic_head.q_values(critic_out)
        return jnp.take_along_axis(q, actions[:, None], axis=-1)[:, 0]

    def _evaluation_action(
        self,
        actor: Network,
        carry: PyTree[Array],
        timestep: Timestep,
        key: PRNGKeyArray,
    ) -> tuple[PyTree[Array], Int[Array, ""]]:
        del key
        carry, dist = actor(carry, add_time_axis(timestep))
        return carry, jnp.argmax(dist.logits[0]).astype(jnp.int32)
