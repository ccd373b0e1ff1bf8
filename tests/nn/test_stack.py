"""Stack and Repeat: independent weights per layer, scan over layers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import pytest

import memrl_eqx.nn as mnn

from ..helpers import tree_allclose


F, T = 6, 9


def _layer(key):
    k1, k2, k3, k4 = jr.split(key, 4)
    gru = mnn.RNN(mnn.GRUCell(in_features=F, features=F, key=k1))
    return [
        mnn.GatedResidual(mnn.PreNorm(gru), key=k2),
        mnn.GatedResidual(mnn.PreNorm(mnn.FFN(features=F, key=k3)), key=k4),
    ]


def test_repeating_one_instance_is_refused(getkey):
    """`(attention, ffn) * num_layers` ties weights; the Flax original does it
    silently, here it is an error that says what to do."""
    layer = _layer(getkey())
    with pytest.raises(ValueError, match=r"blocks 0 and 2 share parameters.*Repeat"):
        mnn.Stack(layer * 2)
    tied = mnn.Stack(layer * 2, share_parameters=True)
    assert tied.blocks[0] is tied.blocks[2]


def test_no_two_layers_share_parameters(getkey):
    """Every parameter array of every layer differs from the same array of
    every other layer, for Repeat and for a Stack built from keys."""
    n = 4
    repeat = mnn.Repeat(_layer, num_layers=n, key=getkey())
    stack = mnn.Stack([mnn.Stack(_layer(k)) for k in jr.split(getkey(), n)])
    for layers in ([repeat.layer(i) for i in range(n)], list(stack.blocks)):
        params = [
            jtu.tree_leaves(eqx.filter(layer, eqx.is_inexact_array)) for layer in layers
        ]
        for i in range(n):
            for j in range(i + 1, n):
                for a, b in zip(params[i], params[j]):
                    # LayerNorm weights start at one and zero in every layer.
                    if jnp.all(a == a.ravel()[0]):
                        continue
                    assert not jnp.array_equal(a, b), (i, j)


def test_repeat_equals_the_unrolled_stack(getkey):
    n = 3
    repeat = mnn.Repeat(_layer, num_layers=n, key=getkey())
    stack = mnn.Stack([repeat.layer(i) for i in range(n)])
    xs = jr.normal(getkey(), (T, F))
    resets = jnp.zeros(T, bool).at[4].set(True)
    run = eqx.filter_jit(lambda model, *args: model(*args))
    carry, ys = run(repeat, repeat.init_carry(), xs, resets)
    stack_carry, stack_ys = run(stack, stack.init_carry(), xs, resets)
    assert tree_allclose(ys, stack_ys, rtol=1e-5, atol=1e-5)
    for i in range(n):
        layer_carry = jtu.tree_map(lambda c: c[i], carry)
        assert tree_allclose(layer_carry, stack_carry[i], rtol=1e-5, atol=1e-5)


def test_repeat_traces_one_layer(getkey):
    """Scan over layers: the program does not grow with the number of layers."""
    xs, resets = jnp.zeros((T, F)), jnp.zeros(T, bool)

    def size(n):
        model = mnn.Repeat(_layer, num_layers=n, key=getkey())
        jaxpr = jax.make_jaxpr(model)(model.init_carry(), xs, resets)
        return len(jaxpr.eqns)

    assert size(2) == size(8)


def test_repeat_checks_its_arguments(getkey):
    with pytest.raises(ValueError, match="num_layers"):
        mnn.Repeat(_layer, num_layers=0, key=getkey())
    widen = lambda key: mnn.MLP(in_features=F, features=(F + 2,), key=key)
    model = mnn.Repeat(widen, num_layers=2, key=getkey())
    with pytest.raises(ValueError, match="keep the shape"):
        model(model.init_carry(), jnp.zeros((T, F)), jnp.zeros(T, bool))


def test_stack_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        mnn.Stack([])
