"""`ViT` and `PatchEmbedding`: patch extraction against a reshape, the whole
network against an independent pre-LN transformer written from the formulas
with each layer's own weights, and the role of the positional embedding (the
model is permutation invariant over tokens without it, and not with it)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import pytest

from memrl_eqx.nn._vit import PatchEmbedding, ViT

from ..helpers import tree_allclose


# float32 model against a float32 reference that computes the same formulas in
# another order (einsums instead of vmapped layers), through a few layers with
# values O(1): 1e-5 relative and absolute.
RTOL, ATOL = 1e-5, 1e-5

_call = eqx.filter_jit(lambda model, x: model(x))


def test_patch_embedding_against_a_reshape(getkey):
    H, W, C, P, F = 16, 24, 3, 8, 5
    embed = PatchEmbedding(in_channels=C, patch_size=P, features=F, key=getkey())
    x = jr.normal(getkey(), (H, W, C))
    y = _call(embed, x)
    assert embed.num_patches(H, W) == 6 and y.shape == (6, F)
    # Patches in row-major order over the 2x3 grid, each flattened as (row,
    # column, channel) and mapped by the kernel read in the same order.
    patches = x.reshape(H // P, P, W // P, P, C).transpose(0, 2, 1, 3, 4)
    patches = patches.reshape(6, P * P * C)
    kernel = jnp.transpose(embed.conv.weight, (2, 3, 1, 0)).reshape(P * P * C, F)
    expected = patches @ kernel + embed.conv.bias[:, 0, 0][None, :]
    assert tree_allclose(y, expected, rtol=RTOL, atol=ATOL)


def test_patch_embedding_errors(getkey):
    embed = PatchEmbedding(in_channels=3, patch_size=8, features=4, key=getkey())
    with pytest.raises(ValueError, match="not divisible by patch_size=8"):
        embed(jnp.zeros((10, 16, 3)))
    with pytest.raises(ValueError, match="in_channels=3"):
        embed(jnp.zeros((16, 16, 4)))
    with pytest.raises(ValueError, match="patch_size"):
        PatchEmbedding(in_channels=3, patch_size=0, features=4, key=getkey())


def _layer_norm(ln, x):
    mean = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, -1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + ln.eps) * ln.weight[None] + ln.bias[None]


def _attention(mha, x, num_heads):
    """Multi-head self-attention from its definition: per head h,
    softmax(q_h k_h^T / sqrt(d)) v_h, heads concatenated, then the output map."""
    proj = lambda lin, v: v @ lin.weight.T + lin.bias[None]
    q, k, v = (proj(p, x) for p in (mha.query_proj, mha.key_proj, mha.value_proj))
    n, f = q.shape
    d = f // num_heads
    q, k, v = (a.reshape(n, num_heads, d) for a in (q, k, v))
    scores = jnp.einsum("qhd,khd->hqk", q, k) / jnp.sqrt(jnp.float32(d))
    heads = jnp.einsum("hqk,khd->qhd", jax.nn.softmax(scores, -1), v)
    return proj(mha.output_proj, heads.reshape(n, f))


def _reference(vit, x):
    """Tokens -> Linear -> + positions -> L pre-LN blocks (each with layer l's
    own slice of the stacked weights) -> LayerNorm -> mean over tokens."""
    if vit.patch_embedding is None:
        tokens = x.reshape(-1, x.shape[-1])
    else:
        tokens = vit.patch_embedding(x)
    h = tokens @ vit.embedding.weight.T + vit.embedding.bias[None]
    h = h + vit.positional_embedding
    arrays, static = eqx.partition(vit.blocks, eqx.is_array)
    for layer in range(vit.num_layers):
        block = eqx.combine(jtu.tree_map(lambda a: a[layer], arrays), static)
        h = h + _attention(
            block.attention, _layer_norm(block.attention_norm, h), vit.num_heads
        )
        u = _layer_norm(block.ffn_norm, h)
        ffn = block.ffn
        hidden = jax.nn.gelu(u @ ffn.up.weight.T + ffn.up.bias[None])
        h = h + hidden @ ffn.down.weight.T + ffn.down.bias[None]
    return jnp.mean(_layer_norm(vit.norm, h), axis=0)


def _vit(key, patches=True, num_layers=3):
    k1, k2 = jr.split(key)
    embed = (
        PatchEmbedding(in_channels=3, patch_size=4, features=8, key=k1)
        if patches
        else None
    )
    return ViT(
        image_shape=(8, 12, 3),
        features=16,
        num_layers=num_layers,
        num_heads=4,
        expansion_factor=2,
        patch_embedding=embed,
        key=k2,
    )


@pytest.mark.parametrize("patches", [True, False])
def test_equals_an_independent_transformer(patches, getkey):
    vit = _vit(getkey(), patches)
    x = jr.normal(getkey(), (8, 12, 3))
    y = _call(vit, x)
    assert y.shape == (16,) and vit.out_features == 16
    num_tokens = 6 if patches else 96
    assert vit.positional_embedding.shape == (num_tokens, 16)
    assert tree_allclose(y, eqx.filter_jit(_reference)(vit, x), rtol=RTOL, atol=ATOL)


def test_layers_have_independent_weights(getkey):
    """Each layer has its own parameters (not one block repeated), and the
    gradient reaches every layer's parameters differently."""
    vit = _vit(getkey(), num_layers=3)
    arrays = jtu.tree_leaves(eqx.filter(vit.blocks, eqx.is_array))
    assert all(a.shape[0] == 3 for a in arrays)
    for name in ("query_proj", "key_proj", "value_proj", "output_proj"):
        w = getattr(vit.blocks.attention, name).weight
        assert not jnp.allclose(w[0], w[1]) and not jnp.allclose(w[1], w[2])
    assert not jnp.allclose(vit.blocks.ffn.up.weight[0], vit.blocks.ffn.up.weight[1])

    x = jr.normal(getkey(), (8, 12, 3))
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2)))(vit)
    g = grads.blocks.attention.query_proj.weight
    assert all(jnp.any(g[layer] != 0) for layer in range(3))
    assert not jnp.allclose(g[0], g[1])


@pytest.mark.parametrize("patches", [True, False])
def test_positional_embedding_breaks_permutation_invariance(patches, getkey):
    """Attention and mean pooling are permutation equivariant/invariant over
    tokens: without positions, permuting the tokens of an image (pixels, or whole
    patches) leaves the output unchanged (float32 reordering only, 1e-5); the
    learned positional embedding makes the output depend on where things are."""
    vit = _vit(getkey(), patches)
    x = jr.normal(getkey(), (8, 12, 3))
    if patches:  # swap patches by moving whole 4x4 blocks: a 2x3 grid permuted
        grid = x.reshape(2, 4, 3, 4, 3).transpose(0, 2, 1, 3, 4).reshape(6, 4, 4, 3)
        grid = grid[jnp.array([5, 2, 0, 4, 1, 3])]
        permuted = grid.reshape(2, 3, 4, 4, 3).transpose(0, 2, 1, 3, 4)
        permuted = permuted.reshape(8, 12, 3)
    else:
        order = jr.permutation(getkey(), 96)
        permuted = x.reshape(96, 3)[order].reshape(8, 12, 3)
    assert not jnp.allclose(x, permuted)

    no_positions = eqx.tree_at(
        lambda m: m.positional_embedding, vit, jnp.zeros_like(vit.positional_embedding)
    )
    assert tree_allclose(
        _call(no_positions, x), _call(no_positions, permuted), rtol=RTOL, atol=ATOL
    )
    difference = jnp.max(jnp.abs(_call(vit, x) - _call(vit, permuted)))
    assert difference > 1e-3, difference


def test_bool_observations_and_shape_errors(getkey):
    vit = _vit(getkey(), patches=False, num_layers=1)
    obs = jr.bernoulli(getkey(), 0.5, (8, 12, 3))
    assert tree_allclose(_call(vit, obs), _call(vit, obs.astype(jnp.float32)))
    with pytest.raises(ValueError, match=r"\(8, 12, 3\)"):
        vit(jnp.zeros((12, 8, 3)))


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="multiple of `num_heads`"):
        ViT(image_shape=(4, 4, 1), features=10, num_heads=4, key=getkey())
    embed = PatchEmbedding(in_channels=3, patch_size=8, features=8, key=getkey())
    with pytest.raises(ValueError, match="not divisible"):
        ViT(
            image_shape=(10, 10, 3),
            features=8,
            num_heads=2,
            patch_embedding=embed,
            key=getkey(),
        )
    with pytest.raises(ValueError, match="in_channels=3"):
        ViT(
            image_shape=(16, 16, 4),
            features=8,
            num_heads=2,
            patch_embedding=embed,
            key=getkey(),
        )
    with pytest.raises(ValueError, match="num_layers"):
        ViT(image_shape=(4, 4, 1), features=8, num_heads=2, num_layers=0, key=getkey())
