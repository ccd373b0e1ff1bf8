import functools as ft

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces
from gymnax.environments.environment import Environment

from memrl_eqx.envs import (
    AbstractObservationWrapper,
    AbstractWrapper,
    ClipAction,
    EpisodeStatistics,
    EpisodeStatisticsState,
    FlattenObservation,
    FlickerObservation,
    make,
    MaskObservation,
    NormalizeObservation,
    NormalizeReward,
    ObservePreviousActionReward,
    RescaleAction,
)

from ._helpers import cartpole_oracle, constant_policy, random_policy, rollout


def _wrapped_cartpole_oracle(env, key, obs, state, arg):
    return cartpole_oracle(env.env, key, obs, state.env_state, arg)


def _check_statistics(traj):
    """Replays a rollout by hand and checks every step's statistics against it."""
    reward = np.asarray(traj["reward"], dtype=np.float64)
    done = np.asarray(traj["terminated"] | traj["truncated"])
    info = jax.tree.map(np.asarray, traj["info"])
    np.testing.assert_array_equal(info["returned_episode"], done)
    for env in range(reward.shape[0]):
        total, length = 0.0, 0
        last_total, last_length = 0.0, 0  # nothing has finished yet
        for t in range(reward.shape[1]):
            total += reward[env, t]
            length += 1
            if done[env, t]:
                last_total, last_length = total, length
                total, length = 0.0, 0
            returned = float(info["returned_episode_return"][env, t])
            assert returned == pytest.approx(last_total, abs=1e-5)
            assert int(info["returned_episode_length"][env, t]) == last_length


def test_known_episode():
    # RepeatPrevious with k = 1 asks for the suit in view at every one of the 51
    # steps of a one-deck episode, each worth 1/51. Always answering suit 0 earns
    # +1/51 when the card in view is of suit 0 and -1/51 otherwise.
    env, params = make("popgym::RepeatPrevious", k=1, num_decks=1)
    env = EpisodeStatistics(env)
    traj = rollout(
        env,
        params,
        jax.random.key(0),
        jnp.int32(0),
        policy=constant_policy,
        num_envs=1,
        num_steps=60,
    )
    suits = np.argmax(np.asarray(traj["obs"][0, :51]), axis=-1)
    expected_return = np.sum(np.where(suits == 0, 1 / 51, -1 / 51))
    info = jax.tree.map(lambda x: np.asarray(x[0]), traj["info"])

    np.testing.assert_array_equal(np.flatnonzero(info["returned_episode"]), [50])
    assert info["returned_episode_return"][50] == pytest.approx(expected_return)
    assert info["returned_episode_length"][50] == 51
    assert info["returned_episode_return"][50] == pytest.approx(
        np.sum(np.asarray(traj["reward"][0, :51], dtype=np.float64))
    )
    # Before the episode ends nothing has been returned; after it, its values
    # are kept while the next episode runs.
    np.testing.assert_array_equal(info["returned_episode_return"][:50], 0.0)
    np.testing.assert_array_equal(info["returned_episode_length"][:50], 0)
    np.testing.assert_allclose(info["returned_episode_return"][50:], expected_return)
    np.testing.assert_array_equal(info["returned_episode_length"][50:], 51)
    # The running statistics restart with the new episode.
    state = traj["state"]
    assert int(state.episode_length[0, 51]) == 0
    assert float(state.episode_return[0, 51]) == 0.0
    assert int(state.episode_length[0, 59]) == 8


def test_vmap_jit_matches_hand_bookkeeping_and_the_inner_env():
    # Random StatelessCartPole episodes end at different steps in each env.
    inner, params = make("popgym::StatelessCartPoleEasy")
    env = EpisodeStatistics(inner)
    key = jax.random.key(1)
    kwargs = dict(policy=random_policy, num_envs=8, num_steps=120)
    traj = rollout(env, params, key, **kwargs)
    assert np.asarray(traj["info"]["returned_episode"]).sum() > 8
    _check_statistics(traj)

    # The wrapper changes nothing the inner env returns.
    inner_traj = rollout(inner, params, key, **kwargs)
    for name in ("obs", "action", "reward", "terminated", "truncated"):
        np.testing.assert_array_equal(traj[name], inner_traj[name])
    assert set(traj["info"]) == set(inner_traj["info"]) | {
        "returned_episode",
        "returned_episode_return",
        "returned_episode_length",
    }
    for name, value in inner_traj["info"].items():
        np.testing.assert_array_equal(traj["info"][name], value)


def test_counts_truncated_episodes():
    inner, params = make("popgym::StatelessCartPole", max_steps_in_episode=10)
    traj = rollout(
        EpisodeStatistics(inner),
        params,
        jax.random.key(2),
        policy=_wrapped_cartpole_oracle,
        num_envs=2,
        num_steps=25,
    )
    info = traj["info"]
    ends = np.zeros((2, 25), dtype=bool)
    ends[:, [9, 19]] = True
    np.testing.assert_array_equal(info["returned_episode"], ends)
    np.testing.assert_array_equal(info["truncated"], ends)
    assert not np.asarray(info["terminated"]).any()
    np.testing.assert_allclose(info["returned_episode_return"][:, 9:], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(info["returned_episode_length"][:, 9:], 10)
    _check_statistics(traj)


def test_delegates_to_the_inner_env():
    inner, params = make("popgym::RepeatPreviousEasy")
    env = EpisodeStatistics(inner)
    assert isinstance(env, Environment)
    assert env.env is inner
    assert env.name == "RepeatPreviousEasy"
    assert env.num_actions == 4
    assert env.default_params == inner.default_params
    assert env.action_space(params).n == 4
    assert env.observation_space(params).shape == (4,)
    assert env.k == 4  # anything else falls through to the inner env
    with pytest.raises(AttributeError):
        env.not_an_attribute
    assert hash(env) == hash(env)  # static under jit

    obs, state = env.reset(jax.random.key(0), params)
    assert isinstance(state, EpisodeStatisticsState)
    assert obs.shape == (4,)
    assert state.episode_return.dtype == jnp.float32
    assert state.episode_length.dtype == jnp.int32
    for stat in (
        state.episode_return,
        state.episode_length,
        state.returned_episode_return,
        state.returned_episode_length,
    ):
        assert stat.shape == () and stat == 0


# --- The other wrappers -------------------------------------------------------
#
# Each rollout below stacks several wrappers on one environment and is compiled
# once; `_Recorder`, innermost, records in `info` what the environment itself saw
# and returned, so every wrapper's output is checked against a numpy replay of
# the raw stream. Wrappers pass the keys through unchanged, so the inner
# trajectory is the one the bare environment would take.


class _Recorder(AbstractWrapper):
    """Runs a gymnax env under standard dtype promotion (gymnax's classic control
    mixes Python floats and integer actions) and records its raw outputs."""

    def reset(self, key, params=None):
        with jax.numpy_dtype_promotion("standard"):
            obs, state = self.env.reset(key, params)
        # Pendulum resets to weakly typed leaves that stepping makes strong.
        return obs, jax.tree.map(lambda x: x.astype(x.dtype), state)

    def step(self, key, state, action, params=None):
        with jax.numpy_dtype_promotion("standard"):
            obs, state, reward, terminated, truncated, info = self.env.step(
                key, state, action, params
            )
        info = dict(
            info,
            raw_obs=obs,
            raw_final=info["final_observation"],
            raw_action=action,
            raw_reward=reward,
        )
        return obs, state, reward, terminated, truncated, info


class _SplitObservation(AbstractObservationWrapper):
    """A flat observation `o` as `{"b": o[:1], "a": o[1:]}`."""

    def observation_space(self, params=None):
        space = self.env.observation_space(params)
        low, high = np.asarray(space.low), np.asarray(space.high)
        return spaces.Dict(
            {
                "b": spaces.Box(low[:1], high[:1], (1,)),
                "a": spaces.Box(low[1:], high[1:], (space.shape[0] - 1,)),
            }
        )

    def observation(self, key, obs, state, first):
        return {"b": obs[:1], "a": obs[1:]}


def _cartpole():
    env, params = make("gymnax::CartPole-v1")
    return _Recorder(env), params


def _pendulum():
    env, params = make("gymnax::Pendulum-v1")
    return _Recorder(env), params.replace(max_steps_in_episode=20)


def _cartpole_obs(state):
    return np.stack(
        [np.asarray(getattr(state, f)) for f in ("x", "x_dot", "theta", "theta_dot")],
        axis=-1,
    ).astype(np.float64)


def _running(stream):
    """Prefix means and (population) variances along axis 1; variance 1 while
    fewer than two elements were seen."""
    count = np.arange(1, stream.shape[1] + 1).reshape(
        (1, -1) + (1,) * (stream.ndim - 2)
    )
    mean = np.cumsum(stream, axis=1) / count
    var = np.cumsum(stream**2, axis=1) / count - mean**2
    var = np.where(count >= 2, var, 1.0)
    return mean, np.maximum(var, 0.0)


MASK = [0, 2]  # CartPole's [x, theta]: an MDP made a POMDP
P_FLICKER = 0.25
FILL = 5.0
EPS = 1e-8


@ft.cache
def _cartpole_stack():
    inner, params = _cartpole()
    env = ObservePreviousActionReward(
        FlickerObservation(
            MaskObservation(NormalizeObservation(inner, EPS), MASK), P_FLICKER, FILL
        )
    )
    traj = rollout(
        env, params, jax.random.key(3), policy=random_policy, num_envs=16, num_steps=96
    )
    return jax.tree.map(np.asarray, traj)


def test_observation_wrappers_against_numpy():
    traj = _cartpole_stack()
    info = traj["info"]
    obs, action, reward = traj["obs"], traj["action"], traj["reward"]
    num_envs, num_steps = reward.shape
    done = info["terminated"] | info["truncated"]
    assert done.sum() > 2 * num_envs  # episodes end and restart throughout
    first = np.ones_like(done)
    first[:, 1:] = done[:, :-1]

    # The stream NormalizeObservation sees: every observation returned, from the
    # hidden CartPole states, then the one after the last step.
    cartpole_state = traj["state"].env_state.env_state
    stream = _cartpole_obs(cartpole_state)
    np.testing.assert_allclose(stream[:, 1:], info["raw_obs"][:, :-1], atol=1e-6)
    stream = np.concatenate([stream, info["raw_obs"][:, -1:]], axis=1)
    mean, var = _running(stream)
    normalised = (stream - mean) / np.sqrt(var + EPS)
    expected = normalised[:, :num_steps, MASK]

    # Flicker: hidden observations are all `fill`, never the first of an episode,
    # at a rate within four standard errors of p; the others are exact.
    assert obs.shape == (num_envs, num_steps, 2 + 2 + 1) and obs.dtype == np.float32
    seen = obs[..., :2]
    hidden = np.all(seen == FILL, axis=-1)
    assert not hidden[first].any()
    np.testing.assert_allclose(seen[~hidden], expected[~hidden], rtol=1e-3, atol=1e-3)
    rate = hidden[~first].mean()
    stderr = np.sqrt(P_FLICKER * (1 - P_FLICKER) / (~first).sum())
    assert abs(rate - P_FLICKER) < 4 * stderr, (rate, stderr)
    # The normalised stream has running mean ~0 and std ~1.
    late = normalised[:, num_steps // 2 :]
    assert np.abs(late.mean(axis=(0, 1))).max() < 0.35
    assert np.abs(late.std(axis=(0, 1)) - 1).max() < 0.35

    # Previous action (one-hot) and reward: the last step's, zero after a reset.
    prev_action = np.eye(2)[action[:, :-1]]
    prev_action = np.where(first[:, 1:, None], 0.0, prev_action)
    np.testing.assert_array_equal(obs[:, 0, 2:], 0.0)
    np.testing.assert_array_equal(obs[:, 1:, 2:4], prev_action)
    np.testing.assert_array_equal(
        obs[:, 1:, 4], np.where(first[:, 1:], 0.0, reward[:, :-1])
    )
    np.testing.assert_array_equal(reward, info["raw_reward"])

    # info["final_observation"]: the returned observation where no episode ended;
    # where one did, the masked, normalised final observation (or `fill`) with
    # the action and reward that led to it.
    final = info["final_observation"]
    not_done = ~done[:, :-1]
    np.testing.assert_array_equal(final[:, :-1][not_done], obs[:, 1:][not_done])
    final_mean = mean[:, 1:, MASK]
    final_std = np.sqrt(var[:, 1:, MASK] + EPS)
    final_expected = (info["raw_final"][..., MASK] - final_mean) / final_std
    final_hidden = np.all(final[..., :2] == FILL, axis=-1)
    assert final_hidden[done].any() and not final_hidden[done].all()
    shown = done & ~final_hidden
    np.testing.assert_allclose(
        final[..., :2][shown], final_expected[shown], rtol=1e-3, atol=1e-3
    )
    np.testing.assert_array_equal(final[..., 2:4][done], np.eye(2)[action[done]])
    np.testing.assert_array_equal(final[..., 4][done], reward[done])


def _pendulum_policy(env, key, obs, state, arg):
    """The box ends, points beyond them, and uniform actions in between."""
    del env, obs, state, arg
    choice_key, uniform_key = jax.random.split(key)
    u = jax.random.uniform(uniform_key, (), jnp.float32, -1.5, 1.5)
    options = jnp.stack([jnp.float32(v) for v in (-1.0, 1.0, -3.0, 3.0)] + [u])
    return jax.random.choice(choice_key, options)[None]


GAMMA = 0.9


@ft.cache
def _pendulum_stack():
    inner, params = _pendulum()
    env = NormalizeReward(
        FlattenObservation(_SplitObservation(ClipAction(RescaleAction(inner)))),
        GAMMA,
        EPS,
    )
    traj = rollout(
        env,
        params,
        jax.random.key(4),
        policy=_pendulum_policy,
        num_envs=8,
        num_steps=50,
    )
    return jax.tree.map(np.asarray, traj)


def test_action_flatten_and_reward_wrappers_against_numpy():
    traj = _pendulum_stack()
    info = traj["info"]
    action = traj["action"][..., 0]

    # ClipAction then RescaleAction([-1, 1] onto Pendulum's [-2, 2]): the ends
    # map exactly, beyond them clips.
    torque = info["raw_action"][..., 0]
    assert torque.dtype == np.float32
    np.testing.assert_array_equal(torque[action == -1.0], -2.0)
    np.testing.assert_array_equal(torque[action == 1.0], 2.0)
    np.testing.assert_array_equal(torque[action == -3.0], -2.0)
    np.testing.assert_array_equal(torque[action == 3.0], 2.0)
    inside = np.abs(action) < 1
    assert inside.sum() > 20
    np.testing.assert_allclose(torque[inside], 2 * action[inside], rtol=1e-6)

    # FlattenObservation of {"b": o[:1], "a": o[1:]}: the leaves in key order.
    order = [1, 2, 0]
    raw = info["raw_obs"]
    np.testing.assert_array_equal(traj["obs"][:, 1:], raw[:, :-1, order])
    np.testing.assert_array_equal(
        info["final_observation"], info["raw_final"][..., order]
    )

    # NormalizeReward against a numpy replay of the same rewards.
    raw_reward = info["raw_reward"].astype(np.float64)
    done = info["terminated"] | info["truncated"]
    assert done.sum() >= 2 * raw_reward.shape[0]
    for env in range(raw_reward.shape[0]):
        g, returns = 0.0, []
        for t in range(raw_reward.shape[1]):
            g = GAMMA * g + raw_reward[env, t]
            returns.append(g)
            var = np.var(returns) if len(returns) >= 2 else 1.0
            expected = raw_reward[env, t] / np.sqrt(var + EPS)
            assert traj["reward"][env, t] == pytest.approx(expected, rel=1e-3)
            if done[env, t]:
                g = 0.0
    state = traj["state"]
    assert state.statistics.count[0, -1] == raw_reward.shape[1] - 1


def test_wrapper_spaces():
    cartpole, params = _cartpole()
    inner_box = cartpole.observation_space(params)
    masked = MaskObservation(cartpole, MASK).observation_space(params)
    assert masked.shape == (2,)
    np.testing.assert_array_equal(masked.low, np.asarray(inner_box.low)[MASK])
    np.testing.assert_array_equal(masked.high, np.asarray(inner_box.high)[MASK])

    flicker = FlickerObservation(cartpole, 0.5, fill=10.0).observation_space(params)
    np.testing.assert_array_equal(flicker.high[[0, 2]], 10.0)
    np.testing.assert_array_equal(flicker.low, inner_box.low)

    prev = ObservePreviousActionReward(cartpole).observation_space(params)
    assert prev.shape == (7,) and prev.dtype == np.float32
    np.testing.assert_array_equal(prev.low[4:], [0.0, 0.0, -np.inf])
    np.testing.assert_array_equal(prev.high[4:], [1.0, 1.0, np.inf])

    norm = NormalizeObservation(cartpole).observation_space(params)
    assert norm.shape == (4,) and np.all(np.asarray(norm.low) == -np.inf)

    pendulum, pparams = _pendulum()
    split = _SplitObservation(pendulum)
    flat = FlattenObservation(split).observation_space(pparams)
    assert flat.shape == (3,) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat.low, [-1.0, -8.0, -1.0])
    np.testing.assert_array_equal(flat.high, [1.0, 8.0, 1.0])
    prev = ObservePreviousActionReward(pendulum).observation_space(pparams)
    np.testing.assert_array_equal(prev.low[3:], [-2.0, -np.inf])

    rescaled = RescaleAction(pendulum, -1.0, 1.0)
    space = rescaled.action_space(pparams)
    assert space.shape == (1,)
    np.testing.assert_array_equal(space.low, [-1.0])
    np.testing.assert_array_equal(space.high, [1.0])
    np.testing.assert_array_equal(
        rescaled.action(jnp.array([-1.0, 1.0])[:1], pparams), [-2.0]
    )
    np.testing.assert_array_equal(rescaled.action(jnp.array([1.0]), pparams), [2.0])
    clipped = ClipAction(pendulum)
    assert clipped.action_space(pparams).high == pendulum.action_space(pparams).high
    np.testing.assert_array_equal(clipped.action(jnp.array([7.0]), pparams), [2.0])
    # Everything else is delegated through any stack.
    stack = NormalizeReward(ClipAction(rescaled))
    assert stack.name == "Pendulum-v1" and stack.observation_space(pparams).shape == (
        3,
    )


def test_frozen_statistics():
    cartpole, params = _cartpole()
    env = NormalizeObservation(cartpole, update_statistics=False)
    obs, state = env.reset(jax.random.key(0), params)
    assert state.statistics.count == 0  # nothing counted: mean 0, variance 1
    np.testing.assert_allclose(obs, _cartpole_obs(state.env_state), rtol=1e-6)


def _wrappers():
    cartpole, _ = _cartpole()
    pendulum, _ = _pendulum()
    return [
        (lambda: EpisodeStatistics(cartpole), lambda: EpisodeStatistics(pendulum)),
        (
            lambda: MaskObservation(cartpole, [0, 2]),
            lambda: MaskObservation(cartpole, [2, 0]),
        ),
        (
            lambda: FlickerObservation(cartpole, 0.5),
            lambda: FlickerObservation(cartpole, 0.5, fill=1.0),
        ),
        (lambda: FlattenObservation(cartpole), lambda: FlattenObservation(pendulum)),
        (
            lambda: ObservePreviousActionReward(cartpole),
            lambda: ObservePreviousActionReward(pendulum),
        ),
        (
            lambda: NormalizeObservation(cartpole),
            lambda: NormalizeObservation(cartpole, update_statistics=False),
        ),
        (
            lambda: NormalizeReward(pendulum, 0.99),
            lambda: NormalizeReward(pendulum, 0.9),
        ),
        (lambda: ClipAction(pendulum), lambda: ClipAction(ClipAction(pendulum))),
        (
            lambda: RescaleAction(pendulum, -1.0, 1.0),
            lambda: RescaleAction(pendulum, -1.0, 2.0),
        ),
    ]


def test_value_equality_and_no_recompilation():
    traces = []

    def f(env, x):
        traces.append(env)
        return x + 1

    jitted = jax.jit(f, static_argnums=0)
    filter_jitted = eqx.filter_jit(f)
    for build, other in _wrappers():
        a, b, c = build(), build(), other()
        assert a is not b and a == b and hash(a) == hash(b)
        assert a != c
        for fn in (jitted, filter_jitted):
            traces.clear()
            fn(a, jnp.int32(0))
            fn(b, jnp.int32(0))
            assert len(traces) == 1, a
    # The same entries kept, whichever form of mask chose them.
    cartpole, params = _cartpole()
    by_mask = MaskObservation(cartpole, [True, False, True, False])
    assert by_mask == MaskObservation(cartpole, np.array([0, 2]))
    # A fresh wrapper of the same env reuses the traced (so compiled) `reset`.
    traces.clear()

    def reset(env, key):
        traces.append(env)
        return env.reset(key, params)

    lowered = jax.jit(reset, static_argnums=0)
    key = jax.random.key(0)
    lowered.lower(MaskObservation(cartpole, MASK), key)
    lowered.lower(MaskObservation(cartpole, MASK), key)
    assert len(traces) == 1


def test_constructor_errors():
    cartpole, _ = _cartpole()
    pendulum, _ = _pendulum()
    split = _SplitObservation(pendulum)
    with pytest.raises(ValueError, match="mask is a boolean mask of length 3"):
        MaskObservation(cartpole, [True, False, True])
    with pytest.raises(ValueError, match=r"indices in \[0, 4\)"):
        MaskObservation(cartpole, [0, 4])
    with pytest.raises(ValueError, match="distinct"):
        MaskObservation(cartpole, [1, 1])
    with pytest.raises(ValueError, match="at least one"):
        MaskObservation(cartpole, [False] * 4)
    with pytest.raises(ValueError, match="FlattenObservation"):
        MaskObservation(split, [0])
    with pytest.raises(ValueError, match="FlattenObservation"):
        ObservePreviousActionReward(split)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"probability must be in \[0, 1\]"):
            FlickerObservation(cartpole, p)
    with pytest.raises(ValueError, match="epsilon must be positive"):
        NormalizeObservation(cartpole, 0.0)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        NormalizeReward(cartpole, 1.5)
    with pytest.raises(ValueError, match="ClipAction needs env with a continuous"):
        ClipAction(cartpole)
    with pytest.raises(ValueError, match="RescaleAction needs env with a continuous"):
        RescaleAction(cartpole)
    with pytest.raises(ValueError, match="low must be below high"):
        RescaleAction(pendulum, 1.0, -1.0)
    with pytest.raises(ValueError, match="broadcastable"):
        RescaleAction(pendulum, np.zeros(3), 1.0)


def test_a_space_read_under_jit_is_a_clear_error():
    # gymnax's Pendulum builds its observation bounds with jnp, so under jit they
    # are tracers, which MaskObservation cannot turn into its own bounds.
    from memrl_eqx.envs import make

    env, params = make("gymnax::Pendulum-v1")
    masked = MaskObservation(env, [0, 1])
    assert masked.observation_space(params).shape == (2,)  # fine outside jit
    with pytest.raises(ValueError, match="outside `jax.jit`"):
        jax.jit(lambda: masked.observation_space(params).low)()
