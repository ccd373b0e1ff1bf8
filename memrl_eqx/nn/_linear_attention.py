"""`LinearAttentionCell`: causal linear attention (Katharopoulos et al. 2020)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


LinearAttentionElement = tuple[
    Float[Array, "num_heads head_dim head_dim"], Float[Array, "num_heads head_dim"]
]


def _phi(u: Array) -> Array:
    """The feature map $\\phi(u) = \\mathrm{elu}(u) + 1 > 0$."""
    return jax.nn.elu(u) + 1


class LinearAttentionCell(AbstractMemoroidCell):
    """Causal linear attention ("Transformers are RNNs", Katharopoulos et al.).

    Per head, with $q, k, v = W_{q,k,v} x + b_{q,k,v}$ and
    $\\phi(u) = \\mathrm{elu}(u) + 1$:
    $S_t = S_{t-1} + v_t \\phi(k_t)^\\top$, $z_t = z_{t-1} + \\phi(k_t)$
    ($S_0 = 0$, $z_0 = 0$), and the head output
    $o_t = S_t \\phi(q_t) / \\max(\\phi(q_t)^\\top z_t, \\epsilon)$, i.e. softmax-free
    attention over every step of the episode so far. The heads are concatenated,
    RMS-normalised (learnable scale) and projected to `features`.

    As a monoid an element is `(S, z)` with `S` of shape
    `(num_heads, head_dim, head_dim)` (value × key) and `z` of shape
    `(num_heads, head_dim)`; `lift(x) = (v ⊗ φ(k), φ(k))`, `combine` is the
    elementwise sum, identity `(0, 0)`. The output is real, shape `(features,)`.

    **Arguments** (keyword only): `in_features`, `features` (output size),
    `num_heads`, `head_dim`, `eps` (denominator floor, default 1e-6), `key`.
    Projections are LeCun normal with zero biases.
    """

    weight_q: Float[Array, "inner in_features"]
    weight_k: Float[Array, "inner in_features"]
    weight_v: Float[Array, "inner in_features"]
    bias_q: Float[Array, " inner"]
    bias_k: Float[Array, " inner"]
    bias_v: Float[Array, " inner"]
    norm_scale: Float[Array, " inner"]
    weight_out: Float[Array, "features inner"]
    bias_out: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    window: ClassVar[int] = 1

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        num_heads: int,
        head_dim: int,
        eps: float = 1e-6,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_features", in_features),
            ("features", features),
            ("num_heads", num_heads),
            ("head_dim", head_dim),
        ):
            if value < 1:
                raise ValueError(
                    f"LinearAttentionCell: `{name}` must be >= 1; got {value}."
                )
        if not eps > 0:
            raise ValueError(f"LinearAttentionCell: `eps` must be positive; got {eps}.")
        k_q, k_k, k_v, k_out = jr.split(key, 4)
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        inner = num_heads * head_dim
        self.weight_q = lecun(k_q, (inner, in_features), jnp.float32)
        self.weight_k = lecun(k_k, (inner, in_features), jnp.float32)
        self.weight_v = lecun(k_v, (inner, in_features), jnp.float32)
        self.bias_q = jnp.zeros((inner,))
        self.bias_k = jnp.zeros((inner,))
        self.bias_v = jnp.zeros((inner,))
        self.norm_scale = jnp.ones((inner,))
        self.weight_out = lecun(k_out, (features, inner), jnp.float32)
        self.bias_out = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.eps = eps

    def _heads(self, u: Float[Array, " inner"]) -> Float[Array, "num_heads head_dim"]:
        return u.reshape(self.num_heads, self.head_dim)

    def identity(self) -> LinearAttentionElement:
        h, d = self.num_heads, self.head_dim
        dtype = self.weight_k.dtype
        return jnp.zeros((h, d, d), dtype), jnp.zeros((h, d), dtype)

    def lift(self, x: Float[Array, " in_features"]) -> LinearAttentionElement:
        k = _phi(self._heads(self.weight_k @ x + self.bias_k))
        v = self._heads(self.weight_v @ x + self.bias_v)
        return v[:, :, None] * k[:, None, :], k

    def combine(
        self, a: LinearAttentionElement, b: LinearAttentionElement
    ) -> LinearAttentionElement:
        return a[0] + b[0], a[1] + b[1]

    @jax.named_scope("memrl_eqx.nn.LinearAttentionCell")
    def read(
        self, state: LinearAttentionElement, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        s, z = state
        q = _phi(self._heads(self.weight_q @ x + self.bias_q))
        numerator = jnp.einsum("hvk,hk->hv", s, q)
        denominator = jnp.maximum(jnp.sum(q * z, axis=-1), self.eps)
        o = (numerator / denominator[:, None]).reshape(-1)
        o = o * lax.rsqrt(jnp.mean(o**2) + 1e-6) * self.norm_scale
        return self.weight_out @ o + self.bias_out
