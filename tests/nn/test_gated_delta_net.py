"""Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024): the affine-map monoid against
the explicit gated delta rule."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._gated_delta_net import GatedDeltaNetCell

from .test_delta_net import ATOL, reference, RESETS_AT, RTOL, T


def test_reference_recurrence(getkey):
    cell = GatedDeltaNetCell(
        in_features=3, features=5, num_heads=2, head_dim=4, key=getkey()
    )
    # Larger inputs so that the decay alpha varies well away from 1.
    xs = jr.normal(getkey(), (T, 3)) * 3
    resets = jnp.zeros(T, bool).at[jnp.array(RESETS_AT)].set(True)
    model = mnn.Memoroid(cell)
    _, ys = eqx.filter_jit(model)(model.init_carry(), xs, resets)
    expected = reference(cell, xs, resets, gated=True)
    np.testing.assert_allclose(ys, expected, rtol=RTOL, atol=ATOL)


def test_decay_is_in_the_unit_interval(getkey):
    cell = GatedDeltaNetCell(
        in_features=3, features=5, num_heads=4, head_dim=2, key=getkey()
    )
    transition, _ = cell.lift(jnp.zeros(3))
    # At x = 0 the transition is alpha * I with alpha = exp(-dt), dt in [1e-3, 0.1].
    alpha = jnp.diagonal(transition, axis1=1, axis2=2)[:, 0]
    assert jnp.all((alpha > np.exp(-0.1) - 1e-6) & (alpha < np.exp(-1e-3) + 1e-6))


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_heads": 0}, "num_heads"), ({"head_dim": 0}, "head_dim")],
)
def test_bad_arguments(kwargs, name, getkey):
    config = dict(in_features=3, features=4, num_heads=2, head_dim=2) | kwargs
    with pytest.raises(ValueError, match=name):
        GatedDeltaNetCell(**config, key=getkey())
