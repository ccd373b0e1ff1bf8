"""`StreamAC` (stream AC(λ)): ObGD's bound by hand, one update against a hand
computation, the normalisers against NumPy, RTRL traces against backpropagation
through time, vmap over seeds, checkpoints and bad configurations."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
import pytest

import memrl_eqx
from memrl_eqx.algorithms import (
    _stream_ac,
    obgd_step_size,
    sparse_init,
    stream_actor_critic,
    StreamAC,
    StreamACConfig,
)
from memrl_eqx.algorithms._obgd import accumulate_trace, obgd_update
from memrl_eqx.envs import make, RunningStatistics
from memrl_eqx.nn import Linear

from ..helpers import tree_allclose, tree_max_abs_diff
from .envs_for_tests import ConstantReward, RecallCue


SMALL = StreamACConfig(num_steps=4)


def _make(
    config=SMALL, torso="mlp", env=None, params=None, features=8, key=jr.key(0)
) -> StreamAC:
    if env is None:
        env, params = make("gymnax::CartPole-v1")
    actor, critic = stream_actor_critic(
        env, params, torso=torso, features=features, key=key
    )
    return StreamAC(
        config=config, env=env, env_params=params, actor=actor, critic=critic
    )


_params = lambda network: eqx.filter(network, eqx.is_inexact_array)
_step = eqx.filter_jit(lambda algo, state: algo._step(state))


# ---------------------------------------------------------------------- ObGD


def test_obgd_step_size_by_hand():
    trace = {"a": jnp.array([0.5, -1.5]), "b": jnp.array([[2.0]])}  # |z|_1 = 4
    # Active bound: M = alpha kappa max(|delta|, 1) |z|_1 = 0.5 * 2 * 3 * 4 = 12.
    step = obgd_step_size(trace, jnp.float32(-3.0), learning_rate=0.5, kappa=2.0)
    assert math.isclose(float(step), 0.5 / 12.0, rel_tol=1e-6)
    # |delta| < 1 counts as 1: M = 1 * 3 * 1 * 4 = 12.
    step = obgd_step_size(trace, jnp.float32(0.25), learning_rate=1.0, kappa=3.0)
    assert math.isclose(float(step), 1.0 / 12.0, rel_tol=1e-6)
    # Inactive bound (M = 0.1 * 1 * 2 * 4 = 0.8 < 1): plain alpha.
    step = obgd_step_size(trace, jnp.float32(2.0), learning_rate=0.1, kappa=1.0)
    assert math.isclose(float(step), 0.1, rel_tol=1e-6)
    # The update is theta + step * delta * z.
    params = {"a": jnp.array([1.0, 1.0]), "b": jnp.array([[1.0]])}
    new, step = obgd_update(
        params, trace, jnp.float32(-3.0), learning_rate=0.5, kappa=2.0
    )
    expected = {"a": 1.0 - 0.125 * jnp.array([0.5, -1.5]), "b": jnp.array([[0.75]])}
    assert tree_allclose(new, expected)
    # Traces decay by gamma * lambda and restart at an episode's first step.
    grad = {"a": jnp.ones(2), "b": jnp.ones((1, 1))}
    kept = accumulate_trace(trace, grad, 0.5, jnp.bool_(False))
    assert tree_allclose(kept, {"a": jnp.array([1.25, 0.25]), "b": jnp.array([[2.0]])})
    assert tree_allclose(accumulate_trace(trace, grad, 0.5, jnp.bool_(True)), grad)


def test_one_update_by_hand():
    """The first two steps of StreamAC on CartPole against the formulas:
    delta from the scaled reward and the critic's values, the traces, and each
    network moved by ObGD's step along delta times its trace."""
    config = StreamACConfig(num_steps=1, actor_lr=0.5, critic_lr=0.7)
    algo = _make(config)
    cfg = algo.config
    state0 = algo.init(jr.key(1))
    state1, (metrics, _) = _step(algo, state0)
    state2, (metrics2, _) = _step(algo, state1)

    def value(critic, timestep):
        return critic((), jtu.tree_map(lambda x: x[0, None], timestep))[1][0]

    def policy_terms(actor, timestep, action):
        _, dist = actor((), jtu.tree_map(lambda x: x[0, None], timestep))
        return dist.log_prob(action[None])[0], dist.entropy()[0]

    # CartPole pays 1; the first return is 1 and its variance is 1 (one sample),
    # so the scaled reward is 1 / sqrt(1 + eps).
    reward = 1.0 / math.sqrt(1.0 + cfg.epsilon)
    v0 = value(state0.critic, state0.timestep)
    v1 = value(state0.critic, state1.timestep)
    delta = reward + cfg.gamma * v1 - v0
    assert math.isclose(float(metrics["td_error"][0]), float(delta), rel_tol=1e-5)

    # Critic: trace = grad v(s0) (a first step), step from ObGD.
    grad_v = eqx.filter_grad(value)(state0.critic, state0.timestep)
    z = _params(grad_v)
    assert tree_allclose(jtu.tree_map(lambda x: x[0], state1.critic_trace), z)
    l1 = sum(float(jnp.sum(jnp.abs(x))) for x in jtu.tree_leaves(z))
    step = cfg.critic_lr / max(
        1.0, cfg.critic_kappa * cfg.critic_lr * max(abs(float(delta)), 1.0) * l1
    )
    expected = jtu.tree_map(
        lambda p, g: p + step * float(delta) * g, _params(state0.critic), z
    )
    assert tree_allclose(_params(state1.critic), expected, rtol=1e-5, atol=1e-6)

    # Actor: trace = grad [log pi(a0) + tau sign(delta) H].
    action = state1.timestep.prev_action[0]
    grads = jax.jacrev(lambda a: jnp.stack(policy_terms(a, state0.timestep, action)))(
        _params(state0.actor)
    )
    sign = float(jnp.sign(delta))
    z = jtu.tree_map(lambda j: j[0] + cfg.entropy_coefficient * sign * j[1], grads)
    assert tree_allclose(
        jtu.tree_map(lambda x: x[0], state1.actor_trace), z, rtol=1e-5, atol=1e-7
    )
    l1 = sum(float(jnp.sum(jnp.abs(x))) for x in jtu.tree_leaves(z))
    step = cfg.actor_lr / max(
        1.0, cfg.actor_kappa * cfg.actor_lr * max(abs(float(delta)), 1.0) * l1
    )
    assert math.isclose(float(metrics["step_size/actor"][0]), step, rel_tol=1e-5)
    expected = jtu.tree_map(
        lambda p, g: p + step * float(delta) * g, _params(state0.actor), z
    )
    assert tree_allclose(_params(state1.actor), expected, rtol=1e-5, atol=1e-6)

    # The second step decays the trace by gamma * lambda and adds the new
    # gradient, at the new parameters.
    grad_v = _params(eqx.filter_grad(value)(state1.critic, state1.timestep))
    decay = cfg.gamma * cfg.trace_lambda
    expected = jtu.tree_map(lambda z, g: decay * z[0] + g, state1.critic_trace, grad_v)
    assert tree_allclose(
        jtu.tree_map(lambda x: x[0], state2.critic_trace), expected, atol=1e-6
    )


# --------------------------------------------------------------- normalisers


def test_sample_statistics_against_numpy(getkey):
    """Welford's update element by element gives NumPy's mean and sample
    variance (ddof 1), and the normalised values are (x - mean) / sqrt(var + eps)."""
    xs = jr.normal(getkey(), (50, 3)) * jnp.array([[1.0, 5.0, 0.1]]) + 2.0
    statistics = _stream_ac._update_each(RunningStatistics.zeros(xs[0]), xs)
    reference = np.asarray(xs, np.float64)
    assert np.allclose(statistics.mean, reference.mean(0), rtol=1e-5, atol=1e-5)
    variance = _stream_ac.sample_variance(statistics)
    assert np.allclose(variance, reference.var(0, ddof=1), rtol=1e-4)
    normalised = _stream_ac._normalize(statistics, xs[7], 1e-8)
    expected = (reference[7] - reference.mean(0)) / np.sqrt(
        reference.var(0, ddof=1) + 1e-8
    )
    assert np.allclose(normalised, expected, rtol=1e-4, atol=1e-5)
    # Fewer than two elements: variance 1 (nothing to scale by yet).
    one = RunningStatistics.zeros(xs[0]).update(xs[0])
    assert jnp.all(_stream_ac.sample_variance(one) == 1.0)


def test_reward_scale_is_the_running_std_of_the_episode_return():
    """ConstantReward pays 1 for 5 steps, then truncates: the discounted returns
    so far run 1, 1 + g, ..., restarting every episode. After each step the
    reward scale is 1 / sqrt(sample variance of all of them + eps), and the
    statistics of the (constant) observations count every observation."""
    env = ConstantReward()
    config = StreamACConfig(num_steps=1, gamma=0.9)
    algo = _make(config, env=env, params=env.default_params)
    state = algo.init(jr.key(0))
    returns, u = [], 0.0
    for t in range(12):
        state, (metrics, _) = _step(algo, state)
        u = 1.0 if t % 5 == 0 else 0.9 * u + 1.0
        returns.append(u)
        variance = np.var(returns, ddof=1) if len(returns) > 1 else 1.0
        expected = 1.0 / math.sqrt(variance + config.epsilon)
        assert math.isclose(float(metrics["reward_scale"][0]), expected, rel_tol=1e-5)
        # Every observation normalises to the same input, so v(s') = v(s) and
        # delta = r~ + (gamma - 1) v(s) at every step, at the time limits too
        # (steps 4 and 9): truncation is not termination.
        td = metrics["reward_scale"][0] + (0.9 - 1.0) * metrics["value"][0]
        assert math.isclose(float(metrics["td_error"][0]), float(td), rel_tol=1e-5)
    assert math.isclose(
        float(state.return_statistics.mean), np.mean(returns), rel_tol=1e-5
    )
    assert float(state.obs_statistics.count) == 13.0  # the reset and 12 steps


def test_sparse_init():
    layer = Linear(40, 16, key=jr.key(0))
    (new,) = sparse_init([layer], sparsity=0.9, key=jr.key(1))
    weight = np.asarray(new.weight)
    assert np.all((weight == 0).sum(axis=1) == 36)  # ceil(0.9 * 40) per unit
    assert np.all(np.abs(weight) <= 1.0 / math.sqrt(40))
    assert np.all(new.bias == 0)
    # A unit always keeps an input: with 4 inputs, 3 (not all 4) are cut.
    (small,) = sparse_init([Linear(4, 8, key=jr.key(0))], sparsity=0.9, key=jr.key(1))
    assert np.all((np.asarray(small.weight) == 0).sum(axis=1) == 3)
    with pytest.raises(ValueError, match="sparsity"):
        sparse_init([layer], sparsity=1.0, key=jr.key(0))
    # The networks: every Linear is sparse, the LayerNorms have no parameters.
    actor, critic = stream_actor_critic(
        *make("gymnax::CartPole-v1"), features=32, key=jr.key(0)
    )
    linears = [
        x
        for x in jtu.tree_leaves(actor, is_leaf=lambda x: isinstance(x, Linear))
        if isinstance(x, Linear)
    ]
    assert len(linears) == 3
    for x in linears:
        fan_in = x.weight.shape[1]
        zeros = min(math.ceil(0.9 * fan_in), fan_in - 1)
        assert np.all((np.asarray(x.weight) == 0).sum(axis=1) == zeros)


# ---------------------------------------------------------------- recurrence


def test_rtrl_traces_are_of_exact_recurrent_gradients():
    """With an RTRL torso the critic's trace after t steps of one episode is
    sum_k (gamma lambda)^(t-k) grad v(s_k), each gradient by backpropagation
    through the episode so far. Step sizes of 1e-30 keep the parameters fixed
    (to float32), so the sum can be checked exactly; a one-step truncated
    gradient would differ."""
    env = RecallCue()
    params = env.default_params.replace(delay=3)
    config = StreamACConfig(num_steps=1, actor_lr=1e-30, critic_lr=1e-30)
    algo = _make(config, torso="rtrl_lru", env=env, params=params, features=8)
    state = algo.init(jr.key(0))
    critic = state.critic
    timesteps = [state.timestep]
    for _ in range(4):  # cue, three blanks: the query comes next
        state, _ = _step(algo, state)
        timesteps.append(state.timestep)
    assert not bool(jnp.any(jnp.stack([t.reset[0] for t in timesteps[1:]])))
    assert tree_allclose(_params(state.critic), _params(critic))
    sequence = jtu.tree_map(lambda *x: jnp.concatenate(x), *timesteps[:4])

    @eqx.filter_jit
    def bptt(critic, k):
        # v(s_k) from the episode's start, differentiated through the carry.
        prefix = jtu.tree_map(lambda x: x[: k + 1], sequence)
        return eqx.filter_grad(lambda c: c(c.init_carry(), prefix)[1][k])(critic)

    cfg = algo.config
    decay = cfg.gamma * cfg.trace_lambda
    expected = None
    for k in range(4):
        grad = _params(bptt(critic, k))
        expected = (
            grad
            if expected is None
            else jtu.tree_map(lambda e, g: decay * e + g, expected, grad)
        )
    trace = jtu.tree_map(lambda x: x[0], state.critic_trace)
    assert tree_allclose(trace, expected, rtol=1e-4, atol=1e-6), tree_max_abs_diff(
        trace, expected
    )
    # The recurrent parameters' gradients reach back through the carry: the
    # one-step truncated gradients (the carry a constant) sum to something else.
    inner = eqx.tree_at(lambda c: c.torso, critic, critic.torso.model)
    truncated = None
    for k in range(4):
        carry = inner.init_carry()
        if k:
            carry, _ = inner(carry, jtu.tree_map(lambda x: x[:k], sequence))
        step = jtu.tree_map(lambda x: x[k : k + 1], sequence)
        frozen = jax.lax.stop_gradient(carry)
        grad = eqx.filter_grad(lambda c: c(frozen, step)[1][0])(inner)
        nu = grad.torso.cell.nu_log
        truncated = nu if truncated is None else decay * truncated + nu
    exact = trace.torso.model.cell.nu_log
    assert jnp.max(jnp.abs(exact)) > 0
    assert not jnp.allclose(exact, truncated, rtol=1e-2, atol=1e-4)


# ------------------------------------------------------ vmap and checkpoints


def test_vmap_over_seeds_equals_separate_runs():
    """`eqx.filter_vmap` trains three seeds at once, with two streams each; each
    equals its own run."""
    config = StreamACConfig(num_envs=2, num_steps=5)
    keys = jr.split(jr.key(3), 3)

    def run(key):
        algo = _make(config, key=key)
        return algo.train(algo.init(key), 2 * config.steps_per_update)

    states, metrics = eqx.filter_jit(eqx.filter_vmap(run))(keys)
    for i, key in enumerate(keys):
        state_i, metrics_i = eqx.filter_jit(run)(key)
        assert tree_allclose(
            metrics["td_error"][i], metrics_i["td_error"], rtol=1e-4, atol=1e-5
        )
        for name in ("actor", "critic", "critic_trace", "obs_statistics"):
            batched = jtu.tree_map(
                lambda x: x[i], eqx.filter(getattr(states, name), eqx.is_array)
            )
            assert tree_allclose(
                batched,
                eqx.filter(getattr(state_i, name), eqx.is_array),
                rtol=1e-4,
                atol=1e-5,
            ), name
    assert not jnp.allclose(metrics["td_error"][0], metrics["td_error"][1])


def test_train_shapes_steps_and_single_trace():
    algo = _make(StreamACConfig(num_envs=2, num_steps=3))
    state = algo.init(jr.key(0))
    before = eqx.debug.get_num_traces(_stream_ac._train_traced)
    state, metrics = algo.train(state, 13)  # rounds up to 3 entries of 6 steps
    state, _ = algo.train(state, 18)  # the same 3 entries: no new trace
    assert eqx.debug.get_num_traces(_stream_ac._train_traced) - before == 1
    assert metrics["step"].tolist() == [6, 12, 18] and int(state.step) == 36
    for name in ("td_error", "value", "entropy", "step_size/actor", "step_size/critic"):
        assert metrics[name].shape == (3,) and jnp.all(jnp.isfinite(metrics[name]))
    # ObGD never steps further than the step size; entropies of 2 actions.
    assert jnp.all(metrics["step_size/actor"] <= algo.config.actor_lr)
    assert jnp.all((metrics["entropy"] > 0) & (metrics["entropy"] <= jnp.log(2.0)))
    result = algo.evaluate(state, jr.key(1), 3)
    assert result["return"].shape == (3,) and jnp.all(result["length"] >= 1)


def test_checkpoint_round_trip(tmp_path):
    """A saved and reloaded state trains on exactly as the original."""
    algo = _make(_stream_ac.StreamACConfig(num_steps=6), torso="rtrl_lru")
    state, _ = algo.train(algo.init(jr.key(0)), 6)
    path = tmp_path / "state.ckpt"
    memrl_eqx.save_checkpoint(path, state)
    loaded = memrl_eqx.load_checkpoint(path, algo.init(jr.key(5)))
    assert tree_allclose(
        eqx.filter(loaded, eqx.is_array), eqx.filter(state, eqx.is_array)
    )
    continued, m1 = algo.train(state, 6)
    resumed, m2 = algo.train(loaded, 6)
    for name in m1:  # NaN where no episode ended, in both
        np.testing.assert_array_equal(m1[name], m2[name], err_msg=name)
    assert tree_allclose(
        _params(continued.actor), _params(resumed.actor), rtol=0, atol=0
    )


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(num_envs=0), "num_envs"),
        (dict(num_steps=-3), "num_steps"),
        (dict(gamma=1.5), "gamma"),
        (dict(trace_lambda=-0.1), "trace_lambda"),
        (dict(actor_lr=0.0), "actor_lr"),
        (dict(critic_kappa=-1.0), "critic_kappa"),
        (dict(entropy_coefficient=-0.01), "entropy_coefficient"),
    ],
)
def test_bad_config_raises(fields, message):
    with pytest.raises(ValueError, match=f"StreamACConfig: `{message}`"):
        StreamACConfig(**fields)


def test_bad_arguments_raise():
    env, params = make("gymnax::CartPole-v1")
    actor, critic = stream_actor_critic(env, params, features=8, key=jr.key(0))
    with pytest.raises(ValueError, match="StreamAC: `critic`"):
        StreamAC(env=env, env_params=params, actor=actor, critic=actor)
    algo = StreamAC(env=env, env_params=params, actor=actor, critic=critic)
    with pytest.raises(ValueError, match="num_steps"):
        algo.train(algo.init(jr.key(0)), 0)


def test_docs_config_table_matches_the_config():
    from ..test_algorithm_docs import _page, config_table_problems

    assert config_table_problems(_page("stream_ac"), StreamACConfig) == []
