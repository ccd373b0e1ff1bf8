"""`mLSTMCell`: the matrix-memory LSTM of xLSTM (Beck et al. 2024) as a monoid."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


mLSTMElement = tuple[
    Float[Array, "num_heads head_dim head_dim"],
    Float[Array, "num_heads head_dim"],
    Float[Array, " num_heads"],
    Float[Array, " num_heads"],
]

# The "no history" running max-log of the identity element. A large finite
# negative rather than -inf: exp(-inf - (-inf)) is NaN, and so would be the
# gradients across a reset; with -1e30 every exp(m_identity + ...) is exactly 0.
_NO_HISTORY = -1e30
# exp(-m) in the read's normaliser is computed as exp(min(-m, _MAX_EXP)), so a
# very negative running max-log (tiny input gates) cannot overflow to inf (whose
# gradient is NaN). When it binds the true h~ is below 1e-26 |C q| anyway.
_MAX_EXP = 60.0
_READ_EPS = 1e-6
_NORM_EPS = 1e-5


def _normal(key: PRNGKeyArray, shape: tuple[int, ...], std: float) -> Array:
    return jr.normal(key, shape) * std


class mLSTMCell(AbstractMemoroidCell):
    """The mLSTM of xLSTM (Beck et al. 2024), a gated matrix memory, as a monoid.

    **Step.** With `d = hidden_dim / num_heads` and per head $h$:

    - up-projection $\\hat x_t = W_x x_t$, $z_t = W_z x_t$ (width `hidden_dim`);
    - $u_t = \\mathrm{silu}(\\mathrm{conv}(\\hat x_{t-3:t}))$, a causal depthwise
      convolution of kernel size `window = 4` (with bias);
    - $q_t, k_t$ from $u_t$ and $v_t$ from $\\hat x_t$, each block-diagonal with one
      $d \\times d$ block per head (the xLSTM code uses blocks of 4; one block
      per head keeps heads independent and costs the same order);
    - scalar gates per head $\\tilde\\imath_t, \\tilde f_t = W_{i,f} [q_t; k_t; v_t]
      + b_{i,f}$, input gate $e^{\\tilde\\imath_t}$, forget gate
      $\\sigma(\\tilde f_t)$;
    - $C_t = \\sigma(\\tilde f_t) C_{t-1}
      + e^{\\tilde\\imath_t} v_t k_t^\\top/\\sqrt d$,
      $n_t = \\sigma(\\tilde f_t) n_{t-1} + e^{\\tilde\\imath_t} k_t/\\sqrt d$;
    - $\\tilde h_t = C_t q_t / \\max(|n_t^\\top q_t|, 1)$, computed in the stabilised
      form $\\tilde C q / (\\max(|\\tilde n^\\top q|, e^{-m}) + 10^{-6})$
      (with $e^{-m}$ capped at $e^{60}$ so that it cannot overflow);
    - $y_t = W_\\text{down}\\big((\\mathrm{MHLN}(\\tilde h_t) + s \\odot u_t)
      \\odot \\mathrm{silu}(z_t)\\big)$, with MHLN a layer norm per head (scale, no
      bias) and $s$ a learnable skip.

    **Element** `(C, n, log_f, m)`, shapes `(num_heads, d, d)`, `(num_heads, d)`,
    `(num_heads,)`, `(num_heads,)`: the segment's memory and normaliser scaled by
    $e^{-m}$, its summed log forget gate and its running max-log $m$ (the largest
    log weight of any input in the segment). `lift`:
    $(v k^\\top/\\sqrt d, k/\\sqrt d, \\log\\sigma(\\tilde f), \\tilde\\imath)$.
    `combine(a, b)`: $m = \\max(m_a + lf_b, m_b)$,
    $C = e^{m_a + lf_b - m} C_a + e^{m_b - m} C_b$, $n$ likewise,
    $lf = lf_a + lf_b$; every exponent is $\\le 0$, so nothing overflows.
    Identity: $C = 0$, $n = 0$, $lf = 0$, $m = -10^{30}$ (finite, so gradients
    across a reset are exactly zero rather than NaN).

    **Input window.** The causal convolution needs the last 4 inputs, so the
    class variable `window = 4` (the kernel size of the xLSTM paper and of the
    Flax original's default `conv_kernel_size`); `lift` and `read` receive
    `x` of shape `(4, in_features)`, oldest first, and `Memoroid` carries and
    resets that history. The kernel size is fixed at class level because
    `Memoroid` reads `window` from the class.

    **Arguments** (keyword only): `in_features`; `features` (output size);
    `hidden_dim` (the up-projected width, divisible by `num_heads`);
    `num_heads` (default 4); `key`.

    **Initialisation** (xLSTM): up-projection and q, k, v blocks "small init"
    $\\mathcal N(0, 2/(5\\,\\text{in\\_features}))$ (the embedding width, as
    the xLSTM code does for q, k, v too); down-projection "Wang init"
    $\\mathcal N(0, (2/\\sqrt{\\text{features}})^2)$; gate weights zero, forget
    bias `linspace(3, 6)`, input bias $\\mathcal N(0, 0.1^2)$; convolution
    uniform $\\pm 1/\\sqrt 4$; layer-norm scale and skip ones.
    """

    up_x: Float[Array, "hidden_dim in_features"]
    up_z: Float[Array, "hidden_dim in_features"]
    conv_weight: Float[Array, "window hidden_dim"]
    conv_bias: Float[Array, " hidden_dim"]
    q_weight: Float[Array, "num_heads head_dim head_dim"]
    k_weight: Float[Array, "num_heads head_dim head_dim"]
    v_weight: Float[Array, "num_heads head_dim head_dim"]
    igate_weight: Float[Array, "num_heads qkv"]
    igate_bias: Float[Array, " num_heads"]
    fgate_weight: Float[Array, "num_heads qkv"]
    fgate_bias: Float[Array, " num_heads"]
    norm_weight: Float[Array, " hidden_dim"]
    skip: Float[Array, " hidden_dim"]
    down: Float[Array, "features hidden_dim"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    window: ClassVar[int] = 4

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        hidden_dim: int,
        num_heads: int = 4,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_features", in_features),
            ("features", features),
            ("hidden_dim", hidden_dim),
            ("num_heads", num_heads),
        ):
            if value < 1:
                raise ValueError(f"mLSTMCell: `{name}` must be >= 1; got {value}.")
        if hidden_dim % num_heads != 0:
            raise ValueError(
                f"mLSTMCell: `hidden_dim` ({hidden_dim}) must be divisible by "
                f"`num_heads` ({num_heads})."
            )
        d = hidden_dim // num_heads
        keys = jr.split(key, 9)
        small_in = math.sqrt(2 / (5 * in_features))
        self.up_x = _normal(keys[0], (hidden_dim, in_features), small_in)
        self.up_z = _normal(keys[1], (hidden_dim, in_features), small_in)
        bound = 1 / math.sqrt(self.window)
        self.conv_weight = jr.uniform(
            keys[2], (self.window, hidden_dim), minval=-bound, maxval=bound
        )
        self.conv_bias = jr.uniform(keys[3], (hidden_dim,), minval=-bound, maxval=bound)
        self.q_weight = _normal(keys[4], (num_heads, d, d), small_in)
        self.k_weight = _normal(keys[5], (num_heads, d, d), small_in)
        self.v_weight = _normal(keys[6], (num_heads, d, d), small_in)
        self.igate_weight = jnp.zeros((num_heads, 3 * hidden_dim))
        self.igate_bias = _normal(keys[7], (num_heads,), 0.1)
        self.fgate_weight = jnp.zeros((num_heads, 3 * hidden_dim))
        self.fgate_bias = jnp.linspace(3.0, 6.0, num_heads)
        self.norm_weight = jnp.ones((hidden_dim,))
        self.skip = jnp.ones((hidden_dim,))
        self.down = _normal(keys[8], (features, hidden_dim), 2 / math.sqrt(features))
        self.in_features = in_features
        self.features = features
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads

    @property
    def head_dim(self) -> int:
        """The width of each head, `hidden_dim // num_heads`."""
        return self.hidden_dim // self.num_heads

    def _heads(self, v: Float[Array, " hidden_dim"]) -> Float[Array, "heads dim"]:
        return v.reshape(self.num_heads, self.head_dim)

    def _conv(
        self, x: Float[Array, "window in_features"]
    ) -> tuple[Float[Array, " hidden_dim"], Float[Array, " hidden_dim"]]:
        """The up-projected current input and the convolved, activated window."""
        x_up = x @ self.up_x.T
        u = jax.nn.silu(jnp.sum(self.conv_weight * x_up, axis=0) + self.conv_bias)
        return x_up[-1], u

    def _query(self, u: Float[Array, " hidden_dim"]) -> Float[Array, "heads dim"]:
        return jnp.einsum("hij,hj->hi", self.q_weight, self._heads(u))

    def identity(self) -> mLSTMElement:
        h, d = self.num_heads, self.head_dim
        return (
            jnp.zeros((h, d, d)),
            jnp.zeros((h, d)),
            jnp.zeros((h,)),
            jnp.full((h,), _NO_HISTORY),
        )

    def lift(self, x: Float[Array, "window in_features"]) -> mLSTMElement:
        x_up, u = self._conv(x)
        q = self._query(u)
        k = jnp.einsum("hij,hj->hi", self.k_weight, self._heads(u))
        v = jnp.einsum("hij,hj->hi", self.v_weight, self._heads(x_up))
        qkv = jnp.concatenate([q.reshape(-1), k.reshape(-1), v.reshape(-1)])
        i_pre = self.igate_weight @ qkv + self.igate_bias
        f_pre = self.fgate_weight @ qkv + self.fgate_bias
        k = k / math.sqrt(self.head_dim)
        memory = v[:, :, None] * k[:, None, :]
        return memory, k, jax.nn.log_sigmoid(f_pre), i_pre

    def combine(self, a: mLSTMElement, b: mLSTMElement) -> mLSTMElement:
        memory_a, norm_a, lf_a, m_a = a
        memory_b, norm_b, lf_b, m_b = b
        m = jnp.maximum(m_a + lf_b, m_b)
        scale_a = jnp.exp(m_a + lf_b - m)
        scale_b = jnp.exp(m_b - m)
        memory = scale_a[:, None, None] * memory_a + scale_b[:, None, None] * memory_b
        norm = scale_a[:, None] * norm_a + scale_b[:, None] * norm_b
        return memory, norm, lf_a + lf_b, m

    @jax.named_scope("memrl_eqx.nn.mLSTMCell")
    def read(
        self, state: mLSTMElement, x: Float[Array, "window in_features"]
    ) -> Float[Array, " features"]:
        memory, norm, _, m = state
        _, u = self._conv(x)
        z = self.up_z @ x[-1]
        q = self._query(u)
        numerator = jnp.einsum("hij,hj->hi", memory, q)
        floor = jnp.exp(jnp.minimum(-m, _MAX_EXP))
        denominator = jnp.maximum(jnp.abs(jnp.sum(norm * q, axis=-1)), floor)
        h = numerator / (denominator[:, None] + _READ_EPS)
        mean = jnp.mean(h, axis=-1, keepdims=True)
        var = jnp.mean((h - mean) ** 2, axis=-1, keepdims=True)
        h = ((h - mean) * jax.lax.rsqrt(var + _NORM_EPS)).reshape(-1)
        h = h * self.norm_weight + self.skip * u
        return self.down @ (h * jax.nn.silu(z))
