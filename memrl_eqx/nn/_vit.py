"""`ViT` (Dosovitskiy et al. 2021) and its `PatchEmbedding`: a transformer
feature extractor for one image observation."""

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, Shaped

from ._ffn import FFN
from ._linear import Linear


class PatchEmbedding(eqx.Module):
    """Cuts one image into non-overlapping `patch_size x patch_size` patches and
    embeds each linearly: a convolution with kernel = stride = `patch_size`.

    Maps `(height, width, in_channels)` (channels last; booleans and integers are
    cast to float32) to `(num_patches, features)` with
    `num_patches = (height // patch_size) * (width // patch_size)`, the patches in
    row-major order over the patch grid. Height and width must be multiples of
    `patch_size` (a `ValueError` says so otherwise).

    **Arguments** (keyword only): `in_channels`; `patch_size` (default 16);
    `features` (default 768, the embedding width); `key`.
    """

    conv: eqx.nn.Conv2d
    in_channels: int = eqx.field(static=True)
    patch_size: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_channels: int,
        patch_size: int = 16,
        features: int = 768,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_channels", in_channels),
            ("patch_size", patch_size),
            ("features", features),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"PatchEmbedding: `{name}` must be a positive int; got {value}."
                )
        self.conv = eqx.nn.Conv2d(
            in_channels, features, patch_size, stride=patch_size, key=key
        )
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.features = features

    def num_patches(self, height: int, width: int) -> int:
        """The number of patches of a `height x width` image; a `ValueError` if
        either is not a multiple of `patch_size`."""
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(
                f"PatchEmbedding: the image size {height}x{width} is not divisible "
                f"by patch_size={p}."
            )
        return (height // p) * (width // p)

    @jax.named_scope("memrl_eqx.nn.PatchEmbedding")
    def __call__(
        self,
        x: Shaped[Array, "height width channels"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "num_patches features"]:
        height, width, channels = x.shape
        if channels != self.in_channels:
            raise ValueError(
                f"PatchEmbedding: the image has {channels} channels (last axis of "
                f"shape {x.shape}) but in_channels={self.in_channels}."
            )
        num_patches = self.num_patches(height, width)
        y = self.conv(jnp.transpose(x.astype(jnp.float32), (2, 0, 1)))
        return jnp.reshape(y, (self.features, num_patches)).T


class _EncoderBlock(eqx.Module):
    """A pre-LN transformer encoder block on a set of tokens:
    `x + MHA(LN(x))`, then `x + FFN(LN(x))`; non-causal, no mask."""

    attention_norm: eqx.nn.LayerNorm
    attention: eqx.nn.MultiheadAttention
    ffn_norm: eqx.nn.LayerNorm
    ffn: FFN

    def __init__(
        self,
        features: int,
        num_heads: int,
        expansion_factor: int,
        *,
        key: PRNGKeyArray,
    ):
        k1, k2 = jr.split(key)
        self.attention_norm = eqx.nn.LayerNorm(features)
        self.attention = eqx.nn.MultiheadAttention(
            num_heads,
            features,
            use_query_bias=True,
            use_key_bias=True,
            use_value_bias=True,
            use_output_bias=True,
            key=k1,
        )
        self.ffn_norm = eqx.nn.LayerNorm(features)
        self.ffn = FFN(features=features, expansion_factor=expansion_factor, key=k2)

    def __call__(
        self, x: Float[Array, "tokens features"]
    ) -> Float[Array, "tokens features"]:
        h = jax.vmap(self.attention_norm)(x)
        x = x + self.attention(h, h, h)
        h = jax.vmap(self.ffn_norm)(x)
        return x + jax.vmap(self.ffn)(h)


class ViT(eqx.Module):
    """A vision transformer on one image observation, pooled to a feature vector.

    Takes one observation in channels-last layout, shape
    `image_shape = (height, width, channels)` (booleans and integers are cast to
    float32). The tokens are the patches of `patch_embedding` if one is given,
    else the pixels (each pixel's channels as its features). Then: a `Linear` to
    `features`; plus a learned positional embedding per token (initialised
    $\\mathcal N(0, 0.02^2)$); `num_layers` pre-LN transformer encoder blocks
    (`x + MHA(LN(x))`, `x + FFN(LN(x))`, non-causal multi-head self-attention over
    the tokens, FFN width `expansion_factor * features`, GELU), each with its own
    weights (stacked, and run by a `lax.scan` over the layers so that compile time
    does not grow with depth); a final `LayerNorm`; and the mean over tokens.
    Output shape `(features,)`, also `out_features`.

    **Arguments** (keyword only):

    - `image_shape`: `(height, width, channels)` of one observation (the number
      of tokens, hence the positional embedding, depends on it);
    - `features`: the token width (default 768), a multiple of `num_heads`;
    - `num_layers`: default 12;
    - `num_heads`: default 12;
    - `expansion_factor`: the FFN's (default 4);
    - `patch_embedding`: a `PatchEmbedding` whose `in_channels` is `channels`, or
      None (default) for pixel tokens;
    - `key`.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import PatchEmbedding, ViT

    k1, k2 = jax.random.split(jax.random.key(0))
    vit = ViT(
        image_shape=(32, 32, 3),
        features=64,
        num_layers=4,
        num_heads=4,
        expansion_factor=4,
        patch_embedding=PatchEmbedding(
            in_channels=3, patch_size=8, features=64, key=k1
        ),
        key=k2,
    )
    assert vit(jnp.zeros((32, 32, 3))).shape == (64,)
    ```
    """

    patch_embedding: PatchEmbedding | None
    embedding: Linear
    positional_embedding: Float[Array, "tokens features"]
    blocks: _EncoderBlock
    """The `num_layers` blocks, stacked: every array has a leading layer axis."""
    norm: eqx.nn.LayerNorm
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    features: int = eqx.field(static=True)
    num_layers: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        image_shape: tuple[int, int, int],
        features: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        expansion_factor: int = 4,
        patch_embedding: PatchEmbedding | None = None,
        key: PRNGKeyArray,
    ):
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or any(
            not isinstance(s, int) or s < 1 for s in image_shape
        ):
            raise ValueError(
                "ViT: `image_shape` must be (height, width, channels) of positive "
                f"ints; got {image_shape}."
            )
        for name, value in (
            ("features", features),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("expansion_factor", expansion_factor),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ViT: `{name}` must be a positive int; got {value}.")
        if features % num_heads:
            raise ValueError(
                f"ViT: `features` ({features}) must be a multiple of `num_heads` "
                f"({num_heads})."
            )
        height, width, channels = image_shape
        if patch_embedding is None:
            num_tokens, token_features = height * width, channels
        else:
            if patch_embedding.in_channels != channels:
                raise ValueError(
                    f"ViT: `patch_embedding` has in_channels="
                    f"{patch_embedding.in_channels} but `image_shape` {image_shape} "
                    f"has {channels} channels."
                )
            num_tokens = patch_embedding.num_patches(height, width)
            token_features = patch_embedding.features

        k_embed, k_pos, k_blocks = jr.split(key, 3)
        self.patch_embedding = patch_embedding
        self.embedding = Linear(token_features, features, scale=1.0, key=k_embed)
        self.positional_embedding = 0.02 * jr.normal(k_pos, (num_tokens, features))
        make_block = lambda k: _EncoderBlock(
            features, num_heads, expansion_factor, key=k
        )
        self.blocks = eqx.filter_vmap(make_block)(jr.split(k_blocks, num_layers))
        self.norm = eqx.nn.LayerNorm(features)
        self.image_shape = image_shape
        self.features = features
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.out_features = features

    @jax.named_scope("memrl_eqx.nn.ViT")
    def __call__(
        self,
        x: Shaped[Array, "height width channels"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, " features"]:
        if x.shape != self.image_shape:
            raise ValueError(
                f"ViT: expected one observation of shape {self.image_shape} "
                f"(height, width, channels); got {x.shape}. Batch with jax.vmap."
            )
        if self.patch_embedding is None:
            tokens = jnp.reshape(x.astype(jnp.float32), (-1, x.shape[-1]))
        else:
            tokens = self.patch_embedding(x)
        h = jax.vmap(self.embedding)(tokens) + self.positional_embedding

        dynamic, static = eqx.partition(self.blocks, eqx.is_array)

        def layer(h, block_arrays):
            return eqx.combine(block_arrays, static)(h), None

        h, _ = lax.scan(layer, h, dynamic)
        return jnp.mean(jax.vmap(self.norm)(h), axis=0)
