import functools as ft
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.environment import Environment
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ._spaces import map_boxes
from ._wrapper import _done, AbstractObservationWrapper, AbstractWrapper


class RunningStatistics(eqx.Module):
    """The running mean and variance of a stream of arrays (or PyTrees of arrays),
    updated one element at a time with Welford's algorithm.

    **Fields:**

    - `count`: `Float[Array, ""]`, how many elements were seen.
    - `mean`: the mean of the elements, of their structure and shapes.
    - `m2`: the sum of squared deviations from the mean, likewise.

    `variance` is the population variance `m2 / count` once two elements were
    seen, and `1` before (there is no spread to scale by yet). All float32.
    """

    count: Float[Array, ""]
    mean: PyTree[Float[Array, "..."]]
    m2: PyTree[Float[Array, "..."]]

    @staticmethod
    def zeros(like: PyTree[Array]) -> "RunningStatistics":
        """No element seen yet, for elements shaped like `like`."""
        zeros = jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), jnp.float32), like)
        return RunningStatistics(jnp.array(0.0, jnp.float32), zeros, zeros)

    @property
    def variance(self) -> PyTree[Float[Array, "..."]]:
        """The population variance per leaf; ones until two elements are seen."""
        enough = self.count >= 2.0
        count = jnp.maximum(self.count, 1.0)
        return jax.tree.map(
            lambda m2: jnp.where(enough, m2 / count, jnp.ones_like(m2)), self.m2
        )

    def update(self, x: PyTree[Array]) -> "RunningStatistics":
        """The statistics with one more element, `x`."""
        count = self.count + 1.0
        x = jax.tree.map(lambda x: jnp.asarray(x).astype(jnp.float32), x)
        delta = jax.tree.map(jnp.subtract, x, self.mean)
        mean = jax.tree.map(lambda m, d: m + d / count, self.mean, delta)
        m2 = jax.tree.map(lambda m2, d, x, m: m2 + d * (x - m), self.m2, delta, x, mean)
        return RunningStatistics(count, mean, m2)


def _check(epsilon: float, update_statistics: bool) -> float:
    epsilon = float(epsilon)
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be positive, got {epsilon}.")
    if not isinstance(update_statistics, bool):
        raise ValueError(
            f"update_statistics must be a bool, got {update_statistics!r}."
        )
    return epsilon


class NormalizeObservationState(eqx.Module):
    """The state of a [`memrl_eqx.envs.NormalizeObservation`][] environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `statistics`: a [`memrl_eqx.envs.RunningStatistics`][] of the observations
        returned so far (the observation's structure and shapes).
    """

    env_state: PyTree
    statistics: RunningStatistics


class NormalizeObservation(AbstractObservationWrapper):
    """Normalises observations to a running mean of zero and a running standard
    deviation of one.

    Each observation (an array or a PyTree of arrays) first updates running
    statistics of the observations, then is returned as
    `(obs - mean) / sqrt(variance + epsilon)` per entry, in float32, of the same
    structure and shapes. The statistics count every observation `reset` and
    `step` return (including the first observation of each auto-reset episode;
    `info["final_observation"]` is normalised with the same statistics but not
    counted). They start at zero at `reset` and live **in the environment state**
    ([`memrl_eqx.envs.NormalizeObservationState`][]), not in the wrapper: under
    `jax.vmap` each environment keeps its own statistics of its own stream.
    The observation space is the wrapped one with every `Box` unbounded float32.

    **Freezing:** with `update_statistics=False` the statistics are never updated,
    for evaluation: replace the fresh statistics of the evaluation state with the
    trained ones, e.g. `eqx.tree_at(lambda s: s.statistics, state, trained)`
    (observations from the next step on use them).

    **Arguments:**

    - `env`: the environment to wrap.
    - `epsilon`: added to the variance before the square root; positive
        (default `1e-8`).
    - `update_statistics`: whether observations update the statistics
        (keyword only; default True, `False` to evaluate with frozen ones).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.envs import make, NormalizeObservation

    env, params = make("gymnax::CartPole-v1")
    env = NormalizeObservation(env)
    obs, state = env.reset(jax.random.key(0), params)
    assert jnp.all(obs == 0)  # one observation seen: it is the mean
    assert state.statistics.count == 1
    ```
    """

    epsilon: float = eqx.field(static=True)
    update_statistics: bool = eqx.field(static=True)

    def __init__(
        self,
        env: Environment,
        epsilon: float = 1e-8,
        *,
        update_statistics: bool = True,
    ):
        super().__init__(env)
        self.epsilon = _check(epsilon, update_statistics)
        self.update_statistics = update_statistics

    def observation_space(self, params: Any = None) -> Any:
        def unbounded(box: spaces.Box) -> spaces.Box:
            return spaces.Box(-jnp.inf, jnp.inf, box.shape, jnp.float32)

        return map_boxes(self.env.observation_space(params), unbounded)

    def init_state(
        self, key: PRNGKeyArray, obs: PyTree, env_state: PyTree, params: Any
    ) -> NormalizeObservationState:
        del key, params
        statistics = RunningStatistics.zeros(obs)
        if self.update_statistics:
            statistics = statistics.update(obs)
        return NormalizeObservationState(env_state, statistics)

    def update_state(
        self,
        key: PRNGKeyArray,
        state: NormalizeObservationState,
        env_state: PyTree,
        action: Any,
        obs: PyTree,
        reward: Array,
        done: Bool[Array, ""],
        params: Any,
    ) -> tuple[NormalizeObservationState, NormalizeObservationState]:
        del key, action, reward, done, params
        statistics = state.statistics
        if self.update_statistics:
            statistics = statistics.update(obs)
        new = NormalizeObservationState(env_state, statistics)
        return new, new

    def inner_state(self, state: NormalizeObservationState) -> PyTree:
        return state.env_state

    def observation(
        self,
        key: PRNGKeyArray,
        obs: PyTree,
        state: NormalizeObservationState,
        first: Bool[Array, ""],
    ) -> PyTree:
        del key, first
        statistics = state.statistics
        return jax.tree.map(
            lambda x, mean, var: (
                (jnp.asarray(x).astype(jnp.float32) - mean)
                / jnp.sqrt(var + self.epsilon)
            ),
            obs,
            statistics.mean,
            statistics.variance,
        )


class NormalizeRewardState(eqx.Module):
    """The state of a [`memrl_eqx.envs.NormalizeReward`][] environment.

    **Fields:**

    - `env_state`: the wrapped environment's state.
    - `discounted_return`: `Float[Array, ""]`, the discounted return of the
        episode in progress, `sum_i gamma^(t-i) r_i` (zero after a reset).
    - `statistics`: a scalar [`memrl_eqx.envs.RunningStatistics`][] of the
        discounted returns seen so far.
    """

    env_state: PyTree
    discounted_return: Float[Array, ""]
    statistics: RunningStatistics


class NormalizeReward(AbstractWrapper):
    """Scales rewards by the running standard deviation of the discounted return.

    At each step the discounted return `g = gamma * g + reward` updates running
    statistics of `g` (Welford), then the reward is returned as
    `reward / sqrt(variance + epsilon)`, float32 (not centred, so its sign is
    kept). `g` restarts at zero when an episode ends (`terminated | truncated`);
    the statistics go on across episodes. The variance is `1` until two returns
    were seen, so the first reward is returned unscaled. The state
    ([`memrl_eqx.envs.NormalizeRewardState`][]) holds `g` and the statistics:
    under `jax.vmap` each environment keeps its own. Observations and `info`
    are the wrapped environment's. Wrap [`memrl_eqx.envs.EpisodeStatistics`][]
    inside it to record unnormalised returns.

    **Freezing:** with `update_statistics=False` the statistics are never updated
    (move trained ones into the state with `eqx.tree_at`).

    **Arguments:**

    - `env`: the environment to wrap.
    - `gamma`: the discount of the return, in `[0, 1]` (default 0.99).
    - `epsilon`: added to the variance before the square root; positive
        (default `1e-8`).
    - `update_statistics`: whether rewards update the statistics (keyword
        only; default True, `False` to evaluate with frozen ones).

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import EpisodeStatistics, make, NormalizeReward

    env, params = make("gymnax::Pendulum-v1")
    env = NormalizeReward(EpisodeStatistics(env), gamma=0.99)
    obs, state = env.reset(jax.random.key(0), params)
    obs, state, reward, *_ = env.step(jax.random.key(1), state, 0.0, params)
    assert state.statistics.count == 1  # one discounted return seen
    ```
    """

    gamma: float = eqx.field(static=True)
    epsilon: float = eqx.field(static=True)
    update_statistics: bool = eqx.field(static=True)

    def __init__(
        self,
        env: Environment,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        *,
        update_statistics: bool = True,
    ):
        super().__init__(env)
        gamma = float(gamma)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}.")
        self.gamma = gamma
        self.epsilon = _check(epsilon, update_statistics)
        self.update_statistics = update_statistics

    @ft.partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: PRNGKeyArray, params: Any = None
    ) -> tuple[PyTree, NormalizeRewardState]:
        obs, env_state = self.env.reset(key, params)
        zero = jnp.array(0.0, jnp.float32)
        state = NormalizeRewardState(env_state, zero, RunningStatistics.zeros(zero))
        return obs, state

    @ft.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: PRNGKeyArray,
        state: NormalizeRewardState,
        action: Any,
        params: Any = None,
    ) -> tuple[
        PyTree, NormalizeRewardState, Float[Array, ""], Array, Array, dict[str, Any]
    ]:
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        reward = jnp.asarray(reward).astype(jnp.float32)
        discounted_return = self.gamma * state.discounted_return + reward
        statistics = state.statistics
        if self.update_statistics:
            statistics = statistics.update(discounted_return)
        scaled = reward / jnp.sqrt(statistics.variance + self.epsilon)
        done = _done(terminated, truncated)
        discounted_return = jnp.where(
            done, jnp.zeros_like(discounted_return), discounted_return
        )
        state = NormalizeRewardState(env_state, discounted_return, statistics)
        return obs, state, scaled, terminated, truncated, info
