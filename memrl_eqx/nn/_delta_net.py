"""`DeltaNetCell`: linear attention with the delta rule (Yang et al. 2024)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


DeltaElement = tuple[
    Float[Array, "num_heads head_dim head_dim"],
    Float[Array, "num_heads head_dim head_dim"],
]


def check_sizes(name: str, **sizes: int) -> None:
    """Raise a `ValueError` naming the first size that is not positive."""
    for arg, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name}: `{arg}` must be >= 1; got {value}.")


def l2_normalise(u: Float[Array, "num_heads head_dim"]) -> Array:
    """Each head's vector scaled to unit Euclidean norm (zero stays zero)."""
    return u * lax.rsqrt(jnp.sum(u**2, axis=-1, keepdims=True) + 1e-6)


def affine_identity(num_heads: int, head_dim: int, dtype) -> DeltaElement:
    """The identity map $S \\mapsto S I + 0$, per head."""
    eye = jnp.broadcast_to(
        jnp.eye(head_dim, dtype=dtype), (num_heads, head_dim, head_dim)
    )
    return eye, jnp.zeros((num_heads, head_dim, head_dim), dtype)


def affine_combine(a: DeltaElement, b: DeltaElement) -> DeltaElement:
    """Composition of $S \\mapsto S A_a + B_a$ then $S \\mapsto S A_b + B_b$:
    $S \\mapsto S A_a A_b + (B_a A_b + B_b)$, per head."""
    a_a, b_a = a
    a_b, b_b = b
    return a_a @ a_b, b_a @ a_b + b_b


def read_heads(
    state: Float[Array, "num_heads head_dim head_dim"],
    q: Float[Array, "num_heads head_dim"],
    norm_scale: Float[Array, " inner"],
    weight_out: Float[Array, "features inner"],
    bias_out: Float[Array, " features"],
) -> Float[Array, " features"]:
    """$o = S q$ per head, heads concatenated, RMS-normalised, projected."""
    o = jnp.einsum("hvk,hk->hv", state, q).reshape(-1)
    o = o * lax.rsqrt(jnp.mean(o**2) + 1e-6) * norm_scale
    return weight_out @ o + bias_out


class DeltaNetCell(AbstractMemoroidCell):
    """DeltaNet: linear attention whose memory is written by the delta rule.

    Per head, with $q = \\mathrm{L2norm}(W_q x)$, $k = \\mathrm{L2norm}(W_k x)$,
    $v = W_v x$ and the write strength $\\beta = \\sigma(W_\\beta x + b_\\beta)$:

    $S_t = S_{t-1} (I - \\beta_t k_t k_t^\\top) + \\beta_t v_t k_t^\\top
    = S_{t-1} - \\beta_t (S_{t-1} k_t - v_t) k_t^\\top$, $S_0 = 0$,

    (one step of gradient descent on $\\|S k_t - v_t\\|^2 / 2$), read as
    $o_t = S_t q_t$. The heads are concatenated, RMS-normalised (learnable scale)
    and projected to `features`.

    Each step is an affine map $S \\mapsto S A_t + B_t$ with
    $A_t = I - \\beta_t k_t k_t^\\top$, $B_t = \\beta_t v_t k_t^\\top$, so an element
    is the pair `(A, B)`, each of shape `(num_heads, head_dim, head_dim)`;
    `combine(a, b) = (A_a A_b, B_a A_b + B_b)` (apply `a`, then `b`), identity
    `(I, 0)`. The aggregate of an episode's prefix maps $S_0 = 0$ to its `B`, so
    `read` uses `B` as the state. A combine costs $O(\\text{head\\_dim}^3)$ per
    head. Since $\\|k\\| = 1$ and $\\beta \\in (0, 1)$, $\\|A_t\\| \\le 1$.

    **Arguments** (keyword only): `in_features`, `features` (output size),
    `num_heads`, `head_dim` (both key and value size), `key`. Projections are
    LeCun normal (the $q, k, v$ ones without bias); $b_\\beta = 0$.
    """

    weight_q: Float[Array, "inner in_features"]
    weight_k: Float[Array, "inner in_features"]
    weight_v: Float[Array, "inner in_features"]
    weight_beta: Float[Array, "num_heads in_features"]
    bias_beta: Float[Array, " num_heads"]
    norm_scale: Float[Array, " inner"]
    weight_out: Float[Array, "features inner"]
    bias_out: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    window: ClassVar[int] = 1

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        num_heads: int,
        head_dim: int,
        key: PRNGKeyArray,
    ):
        check_sizes(
            "DeltaNetCell",
            in_features=in_features,
            features=features,
            num_heads=num_heads,
            head_dim=head_dim,
        )
        k_q, k_k, k_v, k_beta, k_out = jr.split(key, 5)
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        inner = num_heads * head_dim
        self.weight_q = lecun(k_q, (inner, in_features), jnp.float32)
        self.weight_k = lecun(k_k, (inner, in_features), jnp.float32)
        self.weight_v = lecun(k_v, (inner, in_features), jnp.float32)
        self.weight_beta = lecun(k_beta, (num_heads, in_features), jnp.float32)
        self.bias_beta = jnp.zeros((num_heads,))
        self.norm_scale = jnp.ones((inner,))
        self.weight_out = lecun(k_out, (features, inner), jnp.float32)
        self.bias_out = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.num_heads = num_heads
        self.head_dim = head_dim

    def _heads(self, u: Float[Array, " inner"]) -> Float[Array, "num_heads head_dim"]:
        return u.reshape(self.num_heads, self.head_dim)

    def identity(self) -> DeltaElement:
        return affine_identity(self.num_heads, self.head_dim, self.weight_k.dtype)

    def lift(self, x: Float[Array, " in_features"]) -> DeltaElement:
        k = l2_normalise(self._heads(self.weight_k @ x))
        v = self._heads(self.weight_v @ x)
        beta = jax.nn.sigmoid(self.weight_beta @ x + self.bias_beta)[:, None, None]
        eye = jnp.eye(self.head_dim, dtype=k.dtype)[None]
        transition = eye - beta * (k[:, :, None] * k[:, None, :])
        write = beta * (v[:, :, None] * k[:, None, :])
        return transition, write

    def combine(self, a: DeltaElement, b: DeltaElement) -> DeltaElement:
        return affine_combine(a, b)

    @jax.named_scope("memrl_eqx.nn.DeltaNetCell")
    def read(
        self, state: DeltaElement, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        q = l2_normalise(self._heads(self.weight_q @ x))
        return read_heads(state[1], q, self.norm_scale, self.weight_out, self.bias_out)
