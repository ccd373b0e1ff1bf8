"""`IndRNNCell` (Li et al. 2018): $h' = \\phi(W x + u \\odot h + b)$."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._indrnn import IndRNNCell

from ..helpers import reference_loop, tree_allclose


T, IN, F = 16, 3, 4
# Two float32 evaluations of the same formula, in different orders.
RTOL = ATOL = 1e-5


@pytest.mark.parametrize(
    "activation, recurrent_max", [(jax.nn.relu, None), (jnp.tanh, 0.5)]
)
def test_matches_reference_recurrence(activation, recurrent_max, getkey):
    cell = IndRNNCell(
        in_features=IN,
        features=F,
        activation=activation,
        recurrent_max=recurrent_max,
        key=getkey(),
    )
    # Recurrent weights on both sides of the clip, and a non-zero bias.
    cell = eqx.tree_at(
        lambda c: (c.weight_hh, c.bias),
        cell,
        (
            jr.uniform(getkey(), (F,), minval=-1.2, maxval=1.2),
            jr.normal(getkey(), (F,)),
        ),
    )
    xs = jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 7])].set(True)
    u = cell.weight_hh
    if recurrent_max is not None:
        u = jnp.clip(u, -recurrent_max, recurrent_max)

    def step(h, x):
        h = activation(cell.weight_ih @ x + u * h + cell.bias)
        return h, h

    expected = reference_loop(step, jnp.zeros(F), xs, resets)
    rnn = mnn.RNN(cell)
    _, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, resets)
    assert tree_allclose(ys, expected, rtol=RTOL, atol=ATOL)


def test_recurrent_weights_are_a_vector_in_unit_interval(getkey):
    cell = IndRNNCell(in_features=IN, features=F, key=getkey())
    assert cell.weight_hh.shape == (F,)
    assert jnp.all((cell.weight_hh >= 0) & (cell.weight_hh <= 1))


def test_bad_recurrent_max(getkey):
    with pytest.raises(ValueError, match="recurrent_max"):
        IndRNNCell(in_features=IN, features=F, recurrent_max=0.0, key=getkey())
