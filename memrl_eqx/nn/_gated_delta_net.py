"""`GatedDeltaNetCell`: the gated delta rule (Yang, Kautz & Hatamizadeh 2024)."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._delta_net import (
    affine_combine,
    affine_identity,
    check_sizes,
    DeltaElement,
    l2_normalise,
    read_heads,
)
from ._memoroid_cell import AbstractMemoroidCell


class GatedDeltaNetCell(AbstractMemoroidCell):
    """Gated DeltaNet: the delta rule with a per-step, per-head decay.

    Per head, with $q = \\mathrm{L2norm}(W_q x)$, $k = \\mathrm{L2norm}(W_k x)$,
    $v = W_v x$, $\\beta = \\sigma(W_\\beta x + b_\\beta)$ and the decay
    $\\alpha = \\exp(-\\mathrm{softplus}(W_\\alpha x + b_\\alpha)) \\in (0, 1)$:

    $S_t = \\alpha_t S_{t-1} (I - \\beta_t k_t k_t^\\top) + \\beta_t v_t k_t^\\top$,
    $S_0 = 0$, read as $o_t = S_t q_t$; heads concatenated, RMS-normalised
    (learnable scale) and projected to `features`.

    As a monoid (as `DeltaNetCell`) an element is the affine map
    $S \\mapsto S A + B$ as the pair `(A, B)`, each of shape
    `(num_heads, head_dim, head_dim)`, here with $A_t = \\alpha_t (I - \\beta_t k_t
    k_t^\\top)$ and $B_t = \\beta_t v_t k_t^\\top$; `combine(a, b) = (A_a A_b,
    B_a A_b + B_b)`, identity `(I, 0)`, and `read` uses `B` (the state reached
    from $S_0 = 0$).

    **Arguments** (keyword only): `in_features`, `features` (output size),
    `num_heads`, `head_dim`, `key`. Projections are LeCun normal; $b_\\beta = 0$;
    $b_\\alpha = \\mathrm{softplus}^{-1}(\\delta)$ with $\\delta$ log-uniform in
    $[10^{-3}, 10^{-1}]$ per head (as Mamba2's step), so that initially
    $\\alpha \\approx e^{-\\delta}$ is close to 1.
    """

    weight_q: Float[Array, "inner in_features"]
    weight_k: Float[Array, "inner in_features"]
    weight_v: Float[Array, "inner in_features"]
    weight_beta: Float[Array, "num_heads in_features"]
    bias_beta: Float[Array, " num_heads"]
    weight_alpha: Float[Array, "num_heads in_features"]
    bias_alpha: Float[Array, " num_heads"]
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
            "GatedDeltaNetCell",
            in_features=in_features,
            features=features,
            num_heads=num_heads,
            head_dim=head_dim,
        )
        k_q, k_k, k_v, k_beta, k_alpha, k_dt, k_out = jr.split(key, 7)
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        inner = num_heads * head_dim
        self.weight_q = lecun(k_q, (inner, in_features), jnp.float32)
        self.weight_k = lecun(k_k, (inner, in_features), jnp.float32)
        self.weight_v = lecun(k_v, (inner, in_features), jnp.float32)
        self.weight_beta = lecun(k_beta, (num_heads, in_features), jnp.float32)
        self.bias_beta = jnp.zeros((num_heads,))
        self.weight_alpha = lecun(k_alpha, (num_heads, in_features), jnp.float32)
        dt = jnp.exp(
            jr.uniform(k_dt, (num_heads,), minval=math.log(1e-3), maxval=math.log(1e-1))
        )
        self.bias_alpha = jnp.log(jnp.expm1(dt))  # The inverse of softplus.
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
        alpha = jnp.exp(-jax.nn.softplus(self.weight_alpha @ x + self.bias_alpha))
        eye = jnp.eye(self.head_dim, dtype=k.dtype)[None]
        outer = k[:, :, None] * k[:, None, :]
        transition = alpha[:, None, None] * (eye - beta * outer)
        write = beta * (v[:, :, None] * k[:, None, :])
        return transition, write

    def combine(self, a: DeltaElement, b: DeltaElement) -> DeltaElement:
        return affine_combine(a, b)

    @jax.named_scope("memrl_eqx.nn.GatedDeltaNetCell")
    def read(
        self, state: DeltaElement, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        q = l2_normalise(self._heads(self.weight_q @ x))
        return read_heads(state[1], q, self.norm_scale, self.weight_out, self.bias_out)
