"""`CNN` on one channels-last image: shapes, layout (against `lax` convolutions in
NHWC layout and a hand-computed 1x1 convolution), use inside a `Network`, and a
quick learning check."""

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import optax
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn import heads
from memrl_eqx.nn._cnn import CNN

from ..helpers import tree_allclose


MINATAR = (10, 10, 4)
# float32 against float32 convolutions computed in another layout (NHWC/HWIO by
# XLA instead of NCHW/OIHW): the sums are reordered, values are O(1), so 1e-5.
RTOL, ATOL = 1e-5, 1e-5


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(), 10 * 10 * 32),
        (dict(features=64), 64),
        (dict(channels=(8,), strides=2), 5 * 5 * 8),
        (dict(channels=(8, 4), kernel_sizes=(3, 2), padding="VALID"), 7 * 7 * 4),
        (dict(channels=(6,), kernel_sizes=4, strides=3, padding=1), 3 * 3 * 6),
    ],
)
def test_output_width_on_minatar_sized_input(kwargs, expected, getkey):
    cnn = CNN(image_shape=MINATAR, key=getkey(), **kwargs)
    assert cnn.out_features == expected
    obs = jr.bernoulli(getkey(), 0.3, MINATAR)  # MinAtar observations are bool
    y = eqx.filter_jit(cnn)(obs)
    assert y.shape == (expected,) and y.dtype == jnp.float32
    assert tree_allclose(y, eqx.filter_jit(cnn)(obs.astype(jnp.float32)))


def _reference(cnn, x, padding):
    """The same network through `lax.conv_general_dilated` in NHWC/HWIO layout,
    flattened in (height, width, channels) order."""
    h = x[None]
    for conv in cnn.layers:
        kernel = jnp.transpose(conv.weight, (2, 3, 1, 0))  # OIHW -> HWIO
        pad = padding if isinstance(padding, str) else [(padding, padding)] * 2
        h = lax.conv_general_dilated(
            h, kernel, conv.stride, pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = cnn.activation(h + conv.bias[:, 0, 0][None, None, None, :])
    h = jnp.ravel(h)
    if cnn.linear is not None:
        h = cnn.activation(cnn.linear.weight @ h + cnn.linear.bias)
    return h


@pytest.mark.parametrize("padding", ["SAME", "VALID", 1])
def test_channels_last_layout_against_lax(padding, getkey):
    shape = (9, 7, 3)  # height, width and channels all different
    cnn = CNN(
        image_shape=shape,
        channels=(5, 4),
        kernel_sizes=(3, 2),
        strides=(2, 1),
        padding=padding,
        activation=jnp.tanh,
        key=getkey(),
    )
    x = jr.normal(getkey(), shape)
    y = eqx.filter_jit(cnn)(x)
    assert y.shape == (cnn.out_features,)
    assert tree_allclose(y, _reference(cnn, x, padding), rtol=RTOL, atol=ATOL)
    with_linear = CNN(image_shape=shape, channels=(4,), features=6, key=getkey())
    assert tree_allclose(
        with_linear(x), _reference(with_linear, x, "SAME"), rtol=RTOL, atol=ATOL
    )


def test_one_by_one_convolution_by_hand(getkey):
    """A 1x1 convolution mixes channels at each pixel: out[i, j, o] =
    sum_c W[o, c] x[i, j, c] + b[o], read off the flattened (h, w, c) output.
    Reading the image channels-first instead would mix rows, not channels."""
    shape = (3, 4, 2)
    cnn = CNN(
        image_shape=shape,
        channels=(3,),
        kernel_sizes=1,
        activation=lambda v: v,
        key=getkey(),
    )
    x = jr.normal(getkey(), shape)
    w = cnn.layers[0].weight[:, :, 0, 0]
    b = cnn.layers[0].bias[:, 0, 0]
    expected = jnp.einsum("hwc,oc->hwo", x, w) + b[None, None, :]
    assert tree_allclose(cnn(x).reshape(3, 4, 3), expected, rtol=RTOL, atol=ATOL)
    # A pixel's output depends on that pixel's channels only.
    jac = jax.jacobian(cnn)(x).reshape(3, 4, 3, 3, 4, 2)  # (h, w, o, h', w', c)
    same_pixel = (
        jnp.eye(3, dtype=bool)[:, None, None, :, None, None]
        & jnp.eye(4, dtype=bool)[None, :, None, None, :, None]
    )
    assert jnp.all(jnp.where(same_pixel, 0.0, jac) == 0)
    assert jnp.all(jnp.where(same_pixel, jac, 1.0) != 0)


def test_bad_arguments_and_inputs(getkey):
    with pytest.raises(ValueError, match="image_shape"):
        CNN(image_shape=(10, 10), key=getkey())
    with pytest.raises(ValueError, match="kernel_sizes"):
        CNN(image_shape=MINATAR, channels=(4, 4), kernel_sizes=(3,), key=getkey())
    with pytest.raises(ValueError, match="padding"):
        CNN(image_shape=MINATAR, padding="FULL", key=getkey())
    with pytest.raises(ValueError, match="too small"):
        CNN(image_shape=(3, 3, 1), kernel_sizes=5, padding="VALID", key=getkey())
    cnn = CNN(image_shape=MINATAR, channels=(4,), key=getkey())
    with pytest.raises(ValueError, match=r"\(10, 10, 4\)"):
        cnn(jnp.zeros((4, 10, 10)))


def test_feature_extractor_in_a_network_over_a_sequence(getkey):
    """`FeatureExtractor(observation_extractor=CNN(...))` embeds every step of an
    image sequence; acting one step at a time equals the whole sequence."""
    T, A = 6, 3
    cnn = CNN(image_shape=MINATAR, channels=(4, 4), features=8, key=getkey())
    network = mnn.Network(
        mnn.FeatureExtractor(observation_extractor=cnn),
        mnn.RNN(mnn.GRUCell(in_features=cnn.out_features, features=5, key=getkey())),
        heads.Categorical(in_features=5, action_dim=A, key=getkey()),
    )
    timestep = mnn.Timestep(
        obs=jr.bernoulli(getkey(), 0.3, (T,) + MINATAR),
        prev_action=jnp.zeros(T, jnp.int32),
        prev_reward=jnp.zeros(T),
        reset=jnp.zeros(T, bool).at[jnp.array([0, 4])].set(True),
    )

    @eqx.filter_jit
    def run(network, carry, timestep):
        carry, dist = network(carry, timestep)
        return carry, dist.logits

    _, logits = run(network, network.init_carry(), timestep)
    assert logits.shape == (T, A) and jnp.all(jnp.isfinite(logits))
    carry, steps = network.init_carry(), []
    for t in range(T):
        carry, one = run(network, carry, jax.tree.map(lambda a: a[t : t + 1], timestep))
        steps.append(one)
    assert tree_allclose(jnp.concatenate(steps), logits, rtol=1e-5, atol=1e-6)


def test_learns_an_image_dependent_target(getkey):
    """CNN + Linear regress, on random binary MinAtar-sized images, the count of
    channel 0 in the left half minus that of channel 2 in the bottom half (scaled
    to unit variance). 300 Adam steps (lr 3e-3, 64 fresh images a step) bring the
    held-out mean squared error below 15% of the target's variance (the error of
    the best constant); over 100 seeds it ended at 0.8-7%, median 1.8%."""
    k_cnn, k_head = jr.split(getkey())
    cnn = CNN(image_shape=MINATAR, channels=(8,), key=k_cnn)
    model = (cnn, mnn.Linear(cnn.out_features, 1, scale=1.0, key=k_head))

    def target(obs):
        obs = obs.astype(jnp.float32)
        return (jnp.sum(obs[:, :5, 0]) - jnp.sum(obs[5:, :, 2])) / 5

    def predict(model, obs):
        cnn, head = model
        return head(cnn(obs))[0]

    def batch(key, n=64):
        obs = jr.bernoulli(key, 0.5, (n,) + MINATAR)
        return obs, jax.vmap(target)(obs)

    def mse(model, obs, y):
        return jnp.mean((jax.vmap(lambda o: predict(model, o))(obs) - y) ** 2)

    optimiser = optax.adam(3e-3)

    @eqx.filter_jit
    def train(model, key):
        params, static = eqx.partition(model, eqx.is_array)
        opt_state = optimiser.init(params)

        def step(carry, key):
            params, opt_state = carry
            obs, y = batch(key)
            grads = jax.grad(lambda p: mse(eqx.combine(p, static), obs, y))(params)
            with jax.numpy_dtype_promotion("standard"):  # optax's Adam needs it
                updates, opt_state = optimiser.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = lax.scan(step, (params, opt_state), jr.split(key, 300))
        return eqx.combine(params, static)

    obs, y = batch(getkey(), 512)
    trained = train(model, getkey())
    final = float(eqx.filter_jit(mse)(trained, obs, y))
    variance = float(jnp.var(y))
    assert final < 0.15 * variance, (final, variance)
