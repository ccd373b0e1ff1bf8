"""GVF and Horde (Sutton et al. 2011): the TD target formula, demon targets from
cumulants of the transition, Horde's loss = main loss + Σ demon losses, and
gradients: demons shape the shared torso, never the main head."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn.heads._continuous_q import ContinuousQNetwork
from memrl_eqx.nn.heads._gvf import GVF, Horde, HordeOutput
from memrl_eqx.nn.heads._hl_gauss import HLGaussVNetwork
from memrl_eqx.nn.heads._q import DiscreteQNetwork
from memrl_eqx.nn.heads._value import VNetwork


T, IN, OBS, A = 6, 5, 3, 2
# Sums and products of a few O(1) float32 numbers against float64: 1e-5.
RTOL, ATOL = 1e-5, 1e-5


def _f64(a):
    return np.asarray(a, np.float64)


def _reward(transition):
    return transition.prev_reward


def _first_obs(transition):
    return transition.obs[..., 0]


def _timestep(key):
    k1, k2 = jr.split(key)
    return mnn.Timestep(
        obs=jr.normal(k1, (T, OBS)),
        prev_action=jnp.zeros(T, jnp.int32),
        prev_reward=jr.normal(k2, (T,)),
        reset=jnp.asarray(np.arange(T) == 0),
    )


def _horde(key, head=None):
    k1, k2, k3 = jr.split(key, 3)
    head = VNetwork(in_features=IN, key=k1) if head is None else head
    demons = {
        "reward": GVF(VNetwork(in_features=IN, key=k2), cumulant=_reward, gamma=0.9),
        "obs": GVF(
            HLGaussVNetwork(in_features=IN, num_bins=11, v_min=-3.0, v_max=3.0, key=k3),
            cumulant=_first_obs,
            gamma=0.0,
        ),
    }
    return Horde(head, demons=demons)


def test_gvf_target_formula(getkey):
    gvf = GVF(VNetwork(in_features=IN, key=getkey()), cumulant=_reward, gamma=0.8)
    cumulant, next_value = jr.normal(getkey(), (2, T)), jr.normal(getkey(), (2, T))
    terminated = jr.bernoulli(getkey(), 0.3, (2, T))
    x = jr.normal(getkey(), (T, IN))

    @eqx.filter_jit
    def run(gvf):
        target = gvf.target(cumulant, next_value, terminated)
        grad = jax.grad(lambda v: jnp.sum(gvf.target(cumulant, v, terminated)))
        # Its prediction, value and loss are its head's.
        same = (gvf(x), gvf.head(x), gvf.loss(cumulant, target))
        return target, grad(next_value), same + (gvf.head.loss(cumulant, target),)

    target, grad, (out, head_out, loss, head_loss) = jax.device_get(run(gvf))
    expected = _f64(cumulant) + 0.8 * (1 - _f64(terminated)) * _f64(next_value)
    np.testing.assert_allclose(target, expected, rtol=RTOL, atol=ATOL)
    assert np.all(grad == 0)
    np.testing.assert_array_equal(out, head_out)
    np.testing.assert_array_equal(loss, head_loss)


def test_horde_output_targets_and_loss(getkey):
    horde = _horde(getkey())
    x = jr.normal(getkey(), (T, IN))
    transition = _timestep(getkey())
    terminated = jnp.asarray(np.arange(T) == 2)
    main_targets = jr.normal(getkey(), (T,))

    @eqx.filter_jit
    def run(horde):
        out = horde(x)
        # Demon targets: each demon's cumulant of the transition plus its own
        # discounted next prediction (here the next step's, shifted by one).
        next_out = jax.tree.map(lambda a: jnp.roll(a, -1, axis=0), out)
        targets = horde.demon_targets(next_out, transition, terminated)
        demons = horde.demons
        return dict(
            out=out,
            head=horde.head(x),
            obs_demon=demons["obs"](x),
            value=horde.value(out),
            next_value=demons["reward"].value(next_out.demons["reward"]),
            targets=targets,
            loss=horde.loss(out, main_targets, demon_targets=targets),
            obs_loss=demons["obs"].loss(out.demons["obs"], targets["obs"]),
        )

    r = jax.device_get(run(horde))
    out = r["out"]
    assert isinstance(out, HordeOutput) and set(out.demons) == {"reward", "obs"}
    np.testing.assert_array_equal(out.main, r["head"])
    np.testing.assert_array_equal(out.demons["obs"], r["obs_demon"])
    assert out.demons["obs"].shape == (T, 11)
    np.testing.assert_array_equal(r["value"], out.main)
    next_v = _f64(np.roll(out.demons["reward"], -1))
    np.testing.assert_array_equal(r["next_value"], next_v)
    expected = _f64(transition.prev_reward) + 0.9 * (1 - _f64(terminated)) * next_v
    np.testing.assert_allclose(r["targets"]["reward"], expected, rtol=RTOL, atol=ATOL)
    # gamma = 0: the target is the cumulant, the first observation entry.
    np.testing.assert_allclose(r["targets"]["obs"], transition.obs[:, 0], rtol=RTOL)
    # The loss: ½ squared errors of the main head and the reward demon (both
    # VNetworks), plus the obs demon's HL-Gauss cross-entropy.
    expected = (
        0.5 * (_f64(out.main) - _f64(main_targets)) ** 2
        + 0.5 * (_f64(out.demons["reward"]) - _f64(r["targets"]["reward"])) ** 2
        + _f64(r["obs_loss"])
    )
    np.testing.assert_allclose(r["loss"], expected, rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match="demon_targets"):
        horde.loss(out, main_targets, demon_targets={"reward": main_targets})


def test_horde_forwards_main_head_arguments(getkey):
    x = jr.normal(getkey(), (T, IN))
    actions = jnp.arange(T) % A
    main_targets = jr.normal(getkey(), (T,))
    demon_targets = {"reward": jnp.ones(T), "obs": jnp.zeros(T)}

    # A discrete-Q main head: loss arguments (actions, targets).
    @eqx.filter_jit
    def run(horde):
        out = horde(x)
        loss = horde.loss(out, actions, main_targets, demon_targets=demon_targets)
        main = horde.head.loss(out.main, actions, main_targets)
        demons = horde.demons["reward"].loss(out.demons["reward"], jnp.ones(T))
        demons = demons + horde.demons["obs"].loss(out.demons["obs"], jnp.zeros(T))
        return horde.q_values(out), out.main, loss, main + demons

    head = DiscreteQNetwork(in_features=IN, action_dim=A, key=getkey())
    q, main, loss, expected = jax.device_get(run(_horde(getkey(), head)))
    np.testing.assert_array_equal(q, main)
    np.testing.assert_allclose(loss, expected, rtol=RTOL, atol=ATOL)

    # A continuous-Q main head: call arguments (the action).
    horde = _horde(
        getkey(), ContinuousQNetwork(in_features=IN, action_dim=A, key=getkey())
    )
    action = jr.normal(getkey(), (T, A))
    main, expected = eqx.filter_jit(lambda h: (h(x, action).main, h.head(x, action)))(
        horde
    )
    np.testing.assert_array_equal(main, expected)


def test_demons_train_the_torso_not_the_main_head(getkey):
    k1, k2, k3 = jr.split(getkey(), 3)
    torso = mnn.RNN(mnn.GRUCell(in_features=OBS, features=IN, key=k1))
    network = mnn.Network(mnn.FeatureExtractor(mnn.Identity()), torso, _horde(k2))
    timestep = _timestep(k3)
    main_targets = jnp.zeros(T)

    @eqx.filter_jit
    def grads(network, demons_on):
        def loss(network):
            _, out = network(network.init_carry(), timestep)
            next_out = jax.tree.map(lambda a: jnp.roll(a, -1, axis=0), out)
            targets = network.head.demon_targets(next_out, timestep, timestep.reset)
            if not demons_on:
                return jnp.sum(network.head.head.loss(out.main, main_targets))
            return jnp.sum(network.head.loss(out, main_targets, demon_targets=targets))

        return eqx.filter_grad(loss)(network)

    with_demons = jax.device_get(grads(network, True))
    main_only = jax.device_get(grads(network, False))
    # The main head's gradient does not depend on the demons.
    np.testing.assert_allclose(
        with_demons.head.head.linear.weight,
        main_only.head.head.linear.weight,
        atol=1e-7,
    )
    # The demons' heads learn, and so does the shared torso, differently.
    assert np.any(with_demons.head.demons["reward"].head.linear.weight != 0)
    assert np.any(with_demons.head.demons["obs"].head.linear.weight != 0)
    torso_with, torso_main = (
        jax.tree.leaves(with_demons.torso),
        jax.tree.leaves(main_only.torso),
    )
    assert any(not np.allclose(a, b, atol=1e-7) for a, b in zip(torso_with, torso_main))


def test_bad_arguments(getkey):
    head = VNetwork(in_features=IN, key=getkey())
    with pytest.raises(ValueError, match="gamma"):
        GVF(head, cumulant=_reward, gamma=1.5)
    # Without the test suite's runtime type checks these are `ValueError`s; with
    # them, the type check fails first (a `TypeError` naming the argument).
    with pytest.raises((ValueError, TypeError), match="cumulant"):
        GVF(head, cumulant=3.0, gamma=0.5)
    with pytest.raises((ValueError, TypeError), match="demons"):
        Horde(head, demons={"bad": head})
