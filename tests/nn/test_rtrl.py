"""`RTRL`: its gradients equal backpropagation through time (BPTT, plain
`jax.grad` through the unwrapped model), within a call and across calls, and its
outputs are the wrapped model's."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._indrnn import IndRNNCell
from memrl_eqx.nn._linear_attention import LinearAttentionCell
from memrl_eqx.nn._lru import LRUCell
from memrl_eqx.nn._mingru import MinGRUCell
from memrl_eqx.nn._rtrl import RTRL
from memrl_eqx.nn._rtu import RTUCell
from memrl_eqx.nn._s5 import S5Cell

from ..helpers import tree_allclose, tree_max_abs_diff


T, IN, F, H = 10, 3, 5, 4
# float32: RTRL accumulates the same derivatives forward in time, BPTT backward,
# so the two differ by rounding only (measured: at most ~2e-6 relative to the
# largest gradient entry); 1e-4 relative and 1e-5 absolute leave a wide margin
# while a wrong or missing term (e.g. a truncated gradient) is off by O(1).
RTOL, ATOL = 1e-4, 1e-5

MODELS = {
    "rtu": lambda key: mnn.RNN(
        RTUCell(in_features=IN, features=F, hidden_dim=H, key=key)
    ),
    "indrnn": lambda key: mnn.RNN(
        IndRNNCell(in_features=IN, features=F, activation=jnp.tanh, key=key)
    ),
    "lru": lambda key: mnn.Memoroid(
        LRUCell(in_features=IN, features=F, hidden_dim=H, key=key)
    ),
    "lru_sequential": lambda key: mnn.Memoroid(
        LRUCell(in_features=IN, features=F, hidden_dim=H, key=key), scan="sequential"
    ),
    "s5": lambda key: mnn.Memoroid(
        S5Cell(in_features=IN, features=F, hidden_dim=H, key=key)
    ),
    "mingru": lambda key: mnn.Memoroid(MinGRUCell(in_features=IN, features=F, key=key)),
}
models = pytest.mark.parametrize("name", sorted(MODELS))


def _random_inner_carry(model, key):
    """A mid-episode carry of the wrapped model (random, of the right structure)."""
    leaves, treedef = jtu.tree_flatten(model.init_carry())
    keys = jr.split(key, len(leaves))
    new = []
    for k, leaf in zip(keys, leaves):
        if jnp.iscomplexobj(leaf):
            re, im = jr.normal(k, (2,) + leaf.shape) * 0.5
            new.append(jax.lax.complex(re, im).astype(leaf.dtype))
        else:
            new.append(jr.normal(k, leaf.shape, leaf.dtype) * 0.5)
    return jtu.tree_unflatten(treedef, new)


def _loss(ys, weights):
    """A nonlinear loss on every output."""
    return jnp.sum(jnp.sin(ys) * weights)


@eqx.filter_jit
def _bptt(model, carry, xs, resets, weights):
    """Plain backpropagation through time through the unwrapped model: the
    gradient, and the model's new carry and outputs."""

    def loss(model):
        carry_out, ys = model(carry, xs, resets)
        return _loss(ys, weights), (carry_out, ys)

    return eqx.filter_grad(loss, has_aux=True)(model)


@eqx.filter_jit
def _rtrl(rtrl, carry, xs, resets, weights):
    """The RTRL gradient with respect to the wrapped model, and the new carry and
    outputs."""

    def loss(rtrl):
        carry_out, ys = rtrl(carry, xs, resets)
        return _loss(ys, weights), (carry_out, ys)

    grads, aux = eqx.filter_grad(loss, has_aux=True)(rtrl)
    return grads.model, aux


_run = eqx.filter_jit(lambda model, *args: model(*args))


@models
def test_gradient_and_outputs_equal_bptt(name, getkey):
    """The key property: within one call, with and without resets, from the initial
    carry and from a mid-episode one, RTRL's gradient equals BPTT's; and the
    outputs and inner carry are the wrapped model's.

    Outputs: for an RNN and a sequential Memoroid it is the same float
    computation (up to how XLA fuses it, e.g. into fused multiply-adds: 1e-6, a
    few ulp); a Memoroid's associative scan is compared at float32 rounding
    (1e-5: a different order of the same sums)."""
    model = MODELS[name](getkey())
    rtrl = RTRL(model)
    xs = jr.normal(getkey(), (T, IN))
    weights = jr.normal(getkey(), (T, F))
    no_resets = jnp.zeros(T, bool)
    cases = [
        (model.init_carry(), no_resets),
        (_random_inner_carry(model, getkey()), no_resets),
        (
            _random_inner_carry(model, getkey()),
            no_resets.at[jnp.array([3, 7])].set(True),
        ),
        (model.init_carry(), no_resets.at[0].set(True)),
    ]
    exact = isinstance(model, mnn.RNN) or model.scan == "sequential"
    tol = dict(rtol=1e-6, atol=1e-6) if exact else dict(rtol=1e-5, atol=1e-5)
    for inner_carry, resets in cases:
        expected, (expected_carry, expected_ys) = _bptt(
            model, inner_carry, xs, resets, weights
        )
        carry = (inner_carry, rtrl.init_carry()[1])
        grads, ((inner_out, sensitivities), ys) = _rtrl(
            rtrl, carry, xs, resets, weights
        )
        assert tree_allclose(grads, expected, rtol=RTOL, atol=ATOL), (
            name,
            resets,
            tree_max_abs_diff(grads, expected),
        )
        assert tree_allclose(ys, expected_ys, **tol), tree_max_abs_diff(ys, expected_ys)
        assert tree_allclose(inner_out, expected_carry, **tol)
        assert sensitivities.shape == carry[1].shape
    # The gradient is not trivially zero.
    assert any(jnp.any(g != 0) for g in jtu.tree_leaves(expected))


@pytest.mark.parametrize("name", ["rtu", "lru", "mingru"])
def test_gradient_across_calls_equals_bptt(name, getkey):
    """What RTRL buys: online gradients across calls. Running [0:k], handing the
    carry over, running [k:T] and summing the chunks' losses gives the BPTT
    gradient of the whole sequence (the sensitivities carry the gradient across
    calls); so does streaming, one step per call, summing each step's gradient."""
    model = MODELS[name](getkey())
    rtrl = RTRL(model)
    xs = jr.normal(getkey(), (T, IN))
    weights = jr.normal(getkey(), (T, F))
    resets = jnp.zeros(T, bool).at[6].set(True)
    expected, _ = _bptt(model, model.init_carry(), xs, resets, weights)
    split = 4

    @eqx.filter_jit
    @eqx.filter_grad
    def chunked(rtrl):
        carry, first = rtrl(rtrl.init_carry(), xs[:split], resets[:split])
        _, second = rtrl(carry, xs[split:], resets[split:])
        return _loss(first, weights[:split]) + _loss(second, weights[split:])

    grads = chunked(rtrl).model
    assert tree_allclose(grads, expected, rtol=RTOL, atol=ATOL), tree_max_abs_diff(
        grads, expected
    )

    carry = rtrl.init_carry()
    total = None
    for t in range(T):
        grads, (carry, _) = _rtrl(
            rtrl, carry, xs[t : t + 1], resets[t : t + 1], weights[t : t + 1]
        )
        total = grads if total is None else jtu.tree_map(jnp.add, total, grads)
    assert tree_allclose(total, expected, rtol=RTOL, atol=ATOL), tree_max_abs_diff(
        total, expected
    )


def test_reset_restarts_carry_and_sensitivities(getkey):
    """After a reset the whole RTRL carry (inner carry and sensitivities) is that
    of a fresh run from the reset on."""
    model = MODELS["lru"](getkey())
    rtrl = RTRL(model)
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[5].set(True)
    carry, _ = _run(rtrl, rtrl.init_carry(), xs[:5], resets[:5])
    after, _ = _run(rtrl, carry, xs[5:], resets[5:])
    fresh, _ = _run(rtrl, rtrl.init_carry(), xs[5:], resets[5:])
    assert tree_allclose(after, fresh, rtol=1e-6, atol=1e-6)
    assert jnp.any(carry[1] != 0)


def test_sensitivities_are_the_carry_jacobian(getkey):
    """The sensitivities of an RTU's carry are the Jacobian of the final carry with
    respect to the recurrent parameters (forward mode, through the unwrapped
    model), of which they keep the entries on each parameter's own unit; all
    other entries of that Jacobian are zero (the recurrence is element-wise)."""
    model = MODELS["rtu"](getkey())
    rtrl = RTRL(model)
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[3].set(True)

    def final_carry(nu_log, B):
        cell = eqx.tree_at(lambda c: (c.nu_log, c.B), model.cell, (nu_log, B))
        (h_re, h_im), _ = mnn.RNN(cell)(model.init_carry(), xs, resets)
        return jnp.stack([h_re, h_im])

    jacobian = jax.jit(jax.jacfwd(final_carry, argnums=(0, 1)))
    j_nu, j_b = jacobian(model.cell.nu_log, model.cell.B)
    (_, sensitivities), _ = _run(rtrl, rtrl.init_carry(), xs, resets)
    split = rtrl.split_sensitivities(sensitivities)
    assert set(split) == {"nu_log", "theta_log", "B"}
    # j_nu: (leaf, unit, unit'); j_b: (leaf, unit, re/im, unit', in).
    assert tree_allclose(
        split["nu_log"], jnp.einsum("iuu->iu", j_nu), rtol=RTOL, atol=ATOL
    )
    assert tree_allclose(
        split["B"], jnp.einsum("iuauf->iauf", j_b), rtol=RTOL, atol=ATOL
    )
    off = (1 - jnp.eye(H))[None]
    assert jnp.all(j_nu * off == 0)
    assert jnp.all(j_b * off[:, :, None, :, None] == 0)


def test_carry_structure(getkey):
    rtrl = RTRL(MODELS["lru"](getkey()))
    inner, sensitivities = rtrl.init_carry()
    # LRU: complex (state, decay), four real leaves per unit; per unit one entry
    # of nu_log, theta_log and gamma_log and a row of B_re and of B_im.
    assert sensitivities.shape == (4, H, 3 + 2 * IN)
    assert jnp.all(sensitivities == 0)
    split = rtrl.split_sensitivities(sensitivities)
    assert set(split) == set(LRUCell.rtrl_parameters)
    assert split["B_re"].shape == (4, H, IN) and split["nu_log"].shape == (4, H)
    assert rtrl.in_features == IN


class _WrongAxis(IndRNNCell):
    rtrl_parameters: ClassVar[dict[str, int]] = {"weight_ih": 1}


class _NotAField(IndRNNCell):
    rtrl_parameters: ClassVar[dict[str, int]] = {"weight_xx": 0}


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda k: mnn.RNN(mnn.GRUCell(in_features=IN, features=F, key=k)),
            "GRUCell.*mixes units",
        ),
        (
            lambda k: mnn.RNN(mnn.LSTMCell(in_features=IN, features=F, key=k)),
            "LSTMCell",
        ),
        (
            lambda k: mnn.Memoroid(
                LinearAttentionCell(
                    in_features=IN, features=F, head_dim=2, num_heads=2, key=k
                )
            ),
            "LinearAttentionCell",
        ),
        (
            lambda k: mnn.SequenceModelWrapper(
                mnn.MLP(in_features=IN, features=(F,), key=k)
            ),
            "RNN or a Memoroid",
        ),
        (
            lambda k: mnn.RNN(_WrongAxis(in_features=IN, features=F, key=k)),
            "weight_ih",
        ),
        (
            lambda k: mnn.RNN(_NotAField(in_features=IN, features=F, key=k)),
            "weight_xx",
        ),
    ],
)
def test_unsupported_models_raise(make, match, getkey):
    with pytest.raises(ValueError, match=match):
        RTRL(make(getkey()))
