from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces
from gymnax.environments.environment import Environment
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree

from ._arguments import check_fill, check_probability, fill_where, mask_indices
from ._spaces import flat_bounds, flat_box, float32_box, widen_boxes
from ._wrapper import AbstractObservationWrapper


# Salt folded into the step key for the flicker draw, so the wrapped environment
# sees the key it would see unwrapped.
_FLICKER_SALT = 0x466C6B


class MaskObservation(AbstractObservationWrapper):
    """Keeps chosen entries of a flat observation, e.g. to hide the velocities of
    an MDP and make it a POMDP.

    The wrapped environment's observations must be flat, `Shaped[Array, " n"]`
    in a `Box` of shape `(n,)`; this wrapper's are `Shaped[Array, " k"]`, the
    entries at `indices` in that order (the same dtype), in a `Box` of shape
    `(k,)` whose bounds are the kept entries' bounds. Both the returned
    observation and `info["final_observation"]` are masked.

    **Arguments:**

    - `env`: the environment to wrap, with a flat `Box` observation space of
        shape `(n,)`.
    - `mask`: which entries to keep: a boolean mask of length `n` (`True`
        keeps), or a non-empty sequence of distinct indices in `[0, n)`
        (kept in the order given). Two wrappers keeping the same entries are
        equal whichever form built them.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import make, MaskObservation

    env, params = make("gymnax::CartPole-v1")  # [x, x_dot, theta, theta_dot]
    env = MaskObservation(env, [True, False, True, False])  # [x, theta]
    assert env.observation_space(params).shape == (2,)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (2,)
    ```
    """

    indices: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        env: Environment,
        mask: Sequence[int] | Bool[ArrayLike, " _"] | Int[ArrayLike, " _"],
    ):
        super().__init__(env)
        low, _ = flat_box(env.observation_space(env.default_params), "env")
        self.indices = mask_indices(mask, low.shape[0])

    def observation_space(self, params: Any = None) -> spaces.Box:
        space = self.env.observation_space(params)
        low, high = flat_box(space, "env")
        index = np.array(self.indices)
        return spaces.Box(
            low[index].astype(space.dtype),
            high[index].astype(space.dtype),
            (len(self.indices),),
            space.dtype,
        )

    def observation(
        self, key: PRNGKeyArray, obs: Array, state: PyTree, first: Bool[Array, ""]
    ) -> Array:
        del key, state, first
        return jnp.take(obs, np.array(self.indices, dtype=np.int32), axis=-1)


class FlickerObservation(AbstractObservationWrapper):
    """Hides each observation with probability `probability`, replacing every
    entry by `fill` (POPGym's "flickering" observations).

    Observations keep their structure, shapes and dtypes. Whether an observation
    is hidden is drawn afresh at each step from the step key (folded with a
    constant, so the wrapped environment sees the keys it would unwrapped), and
    independently in each environment under `jax.vmap`.

    The first observation of an episode (after `reset`, and the observation a
    `step` returns when it ended an episode) is **never** hidden, so every episode
    starts with information. At a step that ended an episode the draw applies to
    `info["final_observation"]`; elsewhere to the returned observation, and
    `info["final_observation"]` is hidden exactly when it is. The observation
    space is the wrapped one with each `Box`'s bounds widened to contain `fill`.

    **Arguments:**

    - `env`: the environment to wrap.
    - `probability`: the probability, in `[0, 1]`, that an observation is
        hidden.
    - `fill`: the value every entry of a hidden observation takes (default
        0.0).

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import FlickerObservation, make

    env, params = make("gymnax::CartPole-v1")
    env = FlickerObservation(env, 0.5)  # about half the observations are zeros
    obs, state = env.reset(jax.random.key(0), params)  # never hidden
    obs, state, *_ = env.step(jax.random.key(1), state, 0, params)
    assert obs.shape == (4,)
    ```
    """

    probability: float = eqx.field(static=True)
    fill: float = eqx.field(static=True)

    def __init__(self, env: Environment, probability: float, fill: float = 0.0):
        super().__init__(env)
        self.probability = check_probability(probability)
        self.fill = check_fill(fill)

    def observation_space(self, params: Any = None) -> Any:
        return widen_boxes(self.env.observation_space(params), self.fill)

    def observation(
        self, key: PRNGKeyArray, obs: PyTree, state: PyTree, first: Bool[Array, ""]
    ) -> PyTree:
        del state
        key = jax.random.fold_in(key, _FLICKER_SALT)
        hide = jax.random.bernoulli(key, self.probability) & ~first
        return fill_where(hide, obs, self.fill)


class FlattenObservation(AbstractObservationWrapper):
    """Makes any observation, an array or a PyTree of arrays, one flat float32
    vector.

    The observation's leaves, in `jax.tree.leaves` order (a dict's keys sorted),
    are raveled, cast to float32 and concatenated: `Float32[Array, " n"]` where
    `n` is the total number of entries. The observation space is a float32 `Box`
    of shape `(n,)` whose bounds are the leaves' spaces' bounds in the same order
    (a `Discrete(m)` leaf is one entry in `[0, m - 1]`).

    **Arguments:**

    - `env`: the environment to wrap, whose observation space is made of
        `Box`, `Discrete`, `Dict` and `Tuple` spaces.

    **Example:** `{"image": (5, 5), "pos": (2,)}` observations become vectors
    of 27 entries; MinAtar's `(10, 10, 4)` images become 400 entries:

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.envs import FlattenObservation, make

    env, params = make("gymnax::Breakout-MinAtar")
    assert env.observation_space(params).shape == (10, 10, 4)
    env = FlattenObservation(env)
    assert env.observation_space(params).shape == (400,)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (400,) and obs.dtype == jnp.float32
    ```
    """

    def __init__(self, env: Environment):
        super().__init__(env)
        flat_bounds(env.observation_space(env.default_params))

    def observation_space(self, params: Any = None) -> spaces.Box:
        return float32_box(*flat_bounds(self.env.observation_space(params)))

    def observation(
        self, key: PRNGKeyArray, obs: PyTree, state: PyTree, first: Bool[Array, ""]
    ) -> Float[Array, " n"]:
        del key, state, first
        leaves = [
            jnp.ravel(jnp.asarray(x)).astype(jnp.float32) for x in jax.tree.leaves(obs)
        ]
        if not leaves:
            return jnp.zeros((0,), jnp.float32)
        return jnp.concatenate(leaves)


class ObservePreviousActionRewardState(eqx.Module):
    """The state of an [`memrl_eqx.envs.ObservePreviousActionReward`][]
    environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `prev_action`: `Float[Array, " a"]`, the encoded previous action (one-hot for
        a `Discrete(a)` action space, the flattened action for a `Box`), zero at
        the first step of an episode.
    - `prev_reward`: `Float[Array, ""]`, the previous reward, zero at the first
        step of an episode.
    """

    env_state: PyTree
    prev_action: Float[Array, " a"]
    prev_reward: Float[Array, ""]


class ObservePreviousActionReward(AbstractObservationWrapper):
    """Appends the previous action and reward to the observation (RL² style), so a
    plain network can condition on them.

    The wrapped environment's observations must be flat, `Shaped[Array, " n"]` in
    a `Box` of shape `(n,)`. This wrapper's are `Float32[Array, " n+a+1"]`:
    `[obs, prev_action, prev_reward]`, where `prev_action` is the one-hot encoding
    (length `a = num_categories`) of the previous action for a `Discrete` action
    space, or the flattened previous action (length `a = prod(shape)`) for a
    `Box`. Both are zero at the first step of an episode (after `reset` and after
    an auto-reset); `info["final_observation"]` carries the action and reward that
    led to it. The state ([`memrl_eqx.envs.ObservePreviousActionRewardState`][])
    keeps them. The observation space is a float32 `Box` whose extra entries are
    bounded by `[0, 1]` (one-hot), the action `Box`'s bounds, and `(-inf, inf)`
    for the reward.

    **Arguments:**

    - `env`: the environment to wrap, with a flat `Box` observation space and a
        `Discrete` or `Box` action space.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import make, ObservePreviousActionReward

    env, params = make("gymnax::CartPole-v1")  # 4 entries, 2 actions
    env = ObservePreviousActionReward(env)
    assert env.observation_space(params).shape == (4 + 2 + 1,)
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, reward, *_ = env.step(jax.random.key(1), state, 1, params)
    assert (obs[4:] == jax.numpy.array([0.0, 1.0, reward])).all()
    ```
    """

    def __init__(self, env: Environment):
        super().__init__(env)
        flat_box(env.observation_space(env.default_params), "env")
        self._action_bounds(env.default_params)

    def _action_bounds(self, params: Any) -> tuple[np.ndarray, np.ndarray]:
        space = self.env.action_space(params)
        if isinstance(space, spaces.Discrete):
            return np.zeros(space.n), np.ones(space.n)
        if isinstance(space, spaces.Box):
            return flat_bounds(space)
        raise ValueError(
            f"env must have a Discrete or Box action space, got {space!r}."
        )

    def observation_space(self, params: Any = None) -> spaces.Box:
        obs_low, obs_high = flat_box(self.env.observation_space(params), "env")
        action_low, action_high = self._action_bounds(params)
        return float32_box(
            np.concatenate([obs_low, action_low, [-np.inf]]),
            np.concatenate([obs_high, action_high, [np.inf]]),
        )

    def _encode(self, action: Any) -> Float[Array, " a"]:
        space = self.env.action_space(self.env.default_params)
        if isinstance(space, spaces.Discrete):
            return jax.nn.one_hot(jnp.asarray(action), space.n, dtype=jnp.float32)
        return jnp.ravel(jnp.asarray(action).astype(jnp.float32))

    def init_state(
        self, key: PRNGKeyArray, obs: PyTree, env_state: PyTree, params: Any
    ) -> ObservePreviousActionRewardState:
        del key, obs
        size = self._action_bounds(params)[0].shape[0]
        return ObservePreviousActionRewardState(
            env_state=env_state,
            prev_action=jnp.zeros((size,), jnp.float32),
            prev_reward=jnp.array(0.0, jnp.float32),
        )

    def update_state(
        self,
        key: PRNGKeyArray,
        state: ObservePreviousActionRewardState,
        env_state: PyTree,
        action: Any,
        obs: PyTree,
        reward: Array,
        done: Bool[Array, ""],
        params: Any,
    ) -> tuple[ObservePreviousActionRewardState, ObservePreviousActionRewardState]:
        del key, state, obs, params
        action = self._encode(action)
        reward = jnp.asarray(reward).astype(jnp.float32)
        final = ObservePreviousActionRewardState(env_state, action, reward)
        new = ObservePreviousActionRewardState(
            env_state,
            jnp.where(done, jnp.zeros_like(action), action),
            jnp.where(done, jnp.zeros_like(reward), reward),
        )
        return final, new

    def inner_state(self, state: ObservePreviousActionRewardState) -> PyTree:
        return state.env_state

    def observation(
        self,
        key: PRNGKeyArray,
        obs: Array,
        state: ObservePreviousActionRewardState,
        first: Bool[Array, ""],
    ) -> Float[Array, " m"]:
        del key, first
        return jnp.concatenate(
            [obs.astype(jnp.float32), state.prev_action, state.prev_reward[None]]
        )
