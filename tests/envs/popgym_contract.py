"""The checks every POPGym task's tests make, written once.

A `PresetCase` names a preset (its class, or its id for `make`), how its rollouts
run (`num_envs` environments for `num_steps` steps) and the oracle that plays it
from the hidden state. Its two rollouts, random and oracle, are cached and share
one compilation: the policy is `RandomOr(oracle)`, switched by the traced
`policy_arg`. The `check_*` functions make the generic assertions on them; each
test file keeps its family's rules, oracles and expectations.
"""

import dataclasses
import functools as ft
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs import make

from ._helpers import completed_episodes, random_policy, rollout


@dataclasses.dataclass(frozen=True)
class RandomOr:
    """Uniformly random actions, or the `oracle`'s when the traced `arg` is
    `(True, oracle_arg)`: one compiled rollout serves both policies."""

    oracle: Callable

    def __call__(self, env, key, obs, state, arg):
        use_oracle, oracle_arg = arg
        oracle = self.oracle(env, key, obs, state, oracle_arg)
        return jnp.where(use_oracle, oracle, random_policy(env, key, obs, state))


@dataclasses.dataclass(frozen=True, eq=False)
class PresetCase:
    """One preset and its rollouts.

    `env` is the class, or the name `make("popgym::<name>")` knows. The oracle is
    a policy `oracle(env, key, obs, state, arg)`; `oracle_arg(case)` gives its
    traced `arg` (e.g. plans computed from the random rollout) and
    `placeholder_arg(case)` an `arg` of the same structure for the random
    rollout; both default to `None`.
    """

    env: type | str
    oracle: Callable
    num_envs: int
    num_steps: int
    random_seed: int = 5
    oracle_seed: int = 6
    oracle_arg: Callable[["PresetCase"], Any] | None = None
    placeholder_arg: Callable[["PresetCase"], Any] | None = None

    @property
    def name(self) -> str:
        return self.env if isinstance(self.env, str) else self.env.__name__

    def __repr__(self):
        return self.name

    @ft.cached_property
    def _made(self):
        # One instance per preset, so that its rollout compiles once.
        if isinstance(self.env, str):
            return make(f"popgym::{self.env}")
        env = self.env()
        return env, env.default_params

    @property
    def made(self):
        """`(env, params)`."""
        return self._made

    def run(self, seed: int, use_oracle: bool, oracle_arg: Any = None) -> dict:
        """A rollout (as NumPy arrays) with the preset's shared compilation."""
        env, params = self.made
        traj = rollout(
            env,
            params,
            jax.random.key(seed),
            (jnp.array(use_oracle), oracle_arg),
            policy=RandomOr(self.oracle),
            num_envs=self.num_envs,
            num_steps=self.num_steps,
        )
        return jax.tree.map(np.asarray, traj)

    def _placeholder(self):
        return None if self.placeholder_arg is None else self.placeholder_arg(self)

    @ft.cached_property
    def random(self) -> dict:
        return self.run(self.random_seed, False, self._placeholder())

    @ft.cached_property
    def oracle_rollout(self) -> dict:
        arg = None if self.oracle_arg is None else self.oracle_arg(self)
        return self.run(self.oracle_seed, True, arg)

    @property
    def rollouts(self) -> tuple[dict, dict]:
        return self.random, self.oracle_rollout


def cases(cases_) -> Callable:
    """`pytest.mark.parametrize` over cases, named by their presets."""
    cases_ = list(cases_)
    return pytest.mark.parametrize("case", cases_, ids=[c.name for c in cases_])


def done(traj) -> np.ndarray:
    return np.asarray(traj["terminated"] | traj["truncated"])


def episode_ends(shape, length: int, first: int | None = None) -> np.ndarray:
    """`True` at the last step of every `length`-step episode of a rollout."""
    last = np.zeros(shape, dtype=bool)
    last[:, (length - 1 if first is None else first) :: length] = True
    return last


def check_preset(case, *, max_steps: int, num_actions: int):
    """The preset's class and name, its time limit and its number of actions."""
    env, params = case.made
    assert type(env).__name__ == case.name == env.name
    assert params.max_steps_in_episode == max_steps
    assert env.num_actions == num_actions


def _has_state_space(env, params) -> bool:
    try:
        env.state_space(params)
    except NotImplementedError:
        return False
    return True


def check_spaces(
    case,
    *,
    obs_shape,
    discrete: bool = True,
    states: bool = True,
):
    """The spaces, and that both rollouts stay in them: observations (those
    returned and the final ones, terminal included), actions, rewards, flags and
    (where the env has a state space) states. Returns the two spaces.

    `states=False` skips the state space (gymnax's `Box.contains` cannot compare
    a boolean state field under strict dtype promotion)."""
    env, params = case.made
    obs_space = env.observation_space(params)
    action_space = env.action_space(params)
    assert isinstance(obs_space, spaces.Box)
    assert obs_space.shape == tuple(obs_shape) and obs_space.dtype == jnp.float32
    if discrete:
        assert isinstance(action_space, spaces.Discrete)
        assert action_space.n == env.num_actions
    else:
        assert isinstance(action_space, spaces.Box)
        assert action_space.shape == (env.num_actions,)
    assert action_space.contains(action_space.sample(jax.random.key(0)))
    low, high = np.asarray(obs_space.low), np.asarray(obs_space.high)
    batch = (case.num_envs, case.num_steps)
    has_state_space = states and _has_state_space(env, params)
    for traj in case.rollouts:
        # obs[:, 0] is what reset returned.
        assert obs_space.contains(jnp.asarray(traj["obs"][0, 0]))
        for obs in (traj["obs"], traj["info"]["final_observation"]):
            assert obs.dtype == np.float32 and obs.shape == batch + obs_space.shape
            assert np.all((low <= obs) & (obs <= high))
        actions = traj["action"]
        if discrete:
            assert actions.dtype == np.int32 and actions.shape == batch
            assert np.all((0 <= actions) & (actions < action_space.n))
        else:
            assert actions.dtype == np.float32
            assert actions.shape == batch + action_space.shape
            alow, ahigh = action_space.low, action_space.high
            assert np.all((alow <= actions) & (actions <= ahigh))
        assert traj["reward"].dtype == np.float32 and traj["reward"].shape == batch
        assert traj["terminated"].dtype == traj["truncated"].dtype == np.bool_
        if has_state_space:
            state_space = env.state_space(params)
            last = params.max_steps_in_episode - 1
            for t in {0, min(last, case.num_steps - 1), case.num_steps - 1}:
                state = jax.tree.map(lambda x: jnp.asarray(x[0, t]), traj["state"])
                assert state_space.contains(state)
    return obs_space, action_space


def check_deterministic(case, state_fields=()):
    """The same key gives the same rollout (one more run, no compilation);
    another key (the oracle rollout's) other observations and other initial
    `state_fields`."""
    a = case.random
    b = case.run(case.random_seed, False, case._placeholder())
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert case.oracle_seed != case.random_seed
    c = case.oracle_rollout
    assert not np.array_equal(a["obs"], c["obs"])
    for field in state_fields:
        x, y = getattr(a["state"], field)[:, 0], getattr(c["state"], field)[:, 0]
        assert not np.array_equal(x, y), field


def check_done_flags(case):
    """`info` repeats the flags `step` returns, in both rollouts."""
    for traj in case.rollouts:
        np.testing.assert_array_equal(traj["info"]["terminated"], traj["terminated"])
        np.testing.assert_array_equal(traj["info"]["truncated"], traj["truncated"])


def check_ends_every(traj, length: int, flag: str = "terminated"):
    """Every episode of the rollout lasts `length` steps and ends with `flag`
    (`"terminated"` or `"truncated"`), never with the other."""
    other = {"terminated": "truncated", "truncated": "terminated"}[flag]
    np.testing.assert_array_equal(traj[flag], episode_ends(traj[flag].shape, length))
    np.testing.assert_array_equal(traj["info"][flag], traj[flag])
    assert not traj[other].any()


def check_returns_within(
    case,
    traj,
    low=-1.0,
    high=1.0,
    *,
    atol: float = 1e-5,
    count: int | None = None,
    min_count: int | None = None,
    length: int | None = None,
):
    """The completed episodes of a rollout: their returns within `[low, high]`
    (to `atol`), their lengths within the time limit, and (where given) exactly
    `count` or at least `min_count` of them, each `length` steps. Returns their
    returns and lengths."""
    returns, lengths = completed_episodes(traj["reward"], done(traj))
    if count is not None:
        assert len(returns) == count
    if min_count is not None:
        assert len(returns) >= min_count
    assert (lengths <= case.made[1].max_steps_in_episode).all()
    if length is not None:
        np.testing.assert_array_equal(lengths, length)
    assert (returns >= low - atol).all() and (returns <= high + atol).all()
    return returns, lengths


def check_oracle_maximum(case, *, count: int, length: int):
    """The oracle wins every episode: `count` episodes of `length` steps, each
    of return 1."""
    returns, _ = check_returns_within(
        case, case.oracle_rollout, count=count, length=length
    )
    np.testing.assert_allclose(returns, 1.0, rtol=1e-5)


def check_mean_near(returns, expected: float, tolerance: float):
    """The mean return within `tolerance` of `expected` (the tolerance derived,
    by the caller, from the standard error)."""
    assert abs(returns.mean() - expected) < tolerance, (returns.mean(), expected)
