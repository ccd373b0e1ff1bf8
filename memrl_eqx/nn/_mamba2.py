"""`Mamba2Cell`: the Mamba-2 selective state-space layer (Dao & Gu 2024) as a monoid."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


Mamba2Element = tuple[
    Float[Array, "num_heads head_dim state_dim"], Float[Array, " num_heads"]
]

_NORM_EPS = 1e-5


def lecun(key: PRNGKeyArray, out_dim: int, in_dim: int) -> Array:
    """A LeCun-normal `(out_dim, in_dim)` weight matrix."""
    init = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
    return init(key, (out_dim, in_dim), jnp.float32)


def dt_bias_init(key: PRNGKeyArray, num_heads: int) -> Float[Array, " num_heads"]:
    """The Mamba step-size bias: the inverse softplus of
    $\\Delta_0 = e^{U(\\log 10^{-3}, \\log 10^{-1})}$ per head, floored at
    $10^{-4}$, so that $\\mathrm{softplus}(b_\\Delta) = \\Delta_0$."""
    log_dt = jr.uniform(key, (num_heads,), minval=math.log(1e-3), maxval=math.log(0.1))
    dt = jnp.maximum(jnp.exp(log_dt), 1e-4)
    return dt + jnp.log(-jnp.expm1(-dt))  # inverse softplus


class Mamba2Cell(AbstractMemoroidCell):
    """The Mamba-2 layer (Dao & Gu 2024, "Transformers are SSMs"): a selective
    state-space model with a scalar decay per head, as a monoid.

    **Step.** With inner width `num_heads * head_dim` and one group ($B$, $C$
    shared by all heads):

    - projections of $x_t$: $x^\\text{in}_t$ (inner), gate $z_t$ (inner),
      $B_t, C_t$ (`state_dim`), $\\Delta^\\text{raw}_t$ (`num_heads`);
    - $[\\bar x_t, \\bar B_t, \\bar C_t] = \\mathrm{silu}(\\mathrm{conv}(
      [x^\\text{in}, B, C]_{t-3:t}))$, a causal depthwise convolution of kernel
      size `window = 4` (with bias);
    - $\\Delta_t = \\mathrm{softplus}(\\Delta^\\text{raw}_t + b_\\Delta)$,
      $A = -e^{A_\\text{log}}$, decay $a_t = e^{\\Delta_t A}$ per head;
    - $S_t = a_t S_{t-1} + \\Delta_t\\, \\bar x_t \\otimes \\bar B_t$ per head,
      $S_t$ of shape `(head_dim, state_dim)`;
    - $y_t = S_t \\bar C_t + D \\odot \\bar x_t$ (per head),
      then $W_\\text{out}(\\mathrm{RMSNorm}(y_t) \\odot \\mathrm{silu}(z_t))$.

    **Element** `(state, log_decay)`, shapes `(num_heads, head_dim, state_dim)`
    and `(num_heads,)`. The decay is kept as its logarithm $\\Delta A \\le 0$:
    products of many decays become sums, so a long segment's decay never
    underflows to a NaN-producing form (its exponential may be 0, which is
    correct). `lift`: $(\\Delta \\bar x \\otimes \\bar B, \\Delta A)$.
    `combine(a, b)`: $(e^{\\ell_b} S_a + S_b, \\ell_a + \\ell_b)$. Identity:
    $(0, 0)$.

    **Input window.** The causal convolution needs the last 4 inputs, so the
    class variable `window = 4` (the paper's and the Flax original's `conv_dim`
    default); `lift` and `read` receive `x` of shape `(4, in_features)`, oldest
    first, and `Memoroid` carries and resets that history. The kernel size is
    fixed at class level because `Memoroid` reads `window` from the class.

    **Arguments** (keyword only): `in_features`; `features` (output size);
    `num_heads` (default 8); `head_dim` (default 16); `state_dim` (default 16);
    `key`.

    **Initialisation** (Mamba-2): $b_\\Delta$ the inverse softplus of
    $\\Delta_0 = e^{U(\\log 10^{-3}, \\log 10^{-1})}$ (floored at $10^{-4}$);
    $A_\\text{log} \\sim U(\\log 1, \\log 16)$; $D = 1$; RMSNorm scale 1;
    projections LeCun normal; convolution uniform $\\pm 1/\\sqrt 4$.
    """

    xbc_proj: Float[Array, "conv_channels in_features"]
    z_proj: Float[Array, "inner in_features"]
    dt_proj: Float[Array, "num_heads in_features"]
    conv_weight: Float[Array, "window conv_channels"]
    conv_bias: Float[Array, " conv_channels"]
    dt_bias: Float[Array, " num_heads"]
    A_log: Float[Array, " num_heads"]
    D: Float[Array, " num_heads"]
    norm_weight: Float[Array, " inner"]
    out_proj: Float[Array, "features inner"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    state_dim: int = eqx.field(static=True)
    window: ClassVar[int] = 4

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        num_heads: int = 8,
        head_dim: int = 16,
        state_dim: int = 16,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_features", in_features),
            ("features", features),
            ("num_heads", num_heads),
            ("head_dim", head_dim),
            ("state_dim", state_dim),
        ):
            if value < 1:
                raise ValueError(f"Mamba2Cell: `{name}` must be >= 1; got {value}.")
        inner = num_heads * head_dim
        channels = inner + 2 * state_dim
        keys = jr.split(key, 8)
        self.xbc_proj = lecun(keys[0], channels, in_features)
        self.z_proj = lecun(keys[1], inner, in_features)
        self.dt_proj = lecun(keys[2], num_heads, in_features)
        bound = 1 / math.sqrt(self.window)
        self.conv_weight = jr.uniform(
            keys[3], (self.window, channels), minval=-bound, maxval=bound
        )
        self.conv_bias = jr.uniform(keys[4], (channels,), minval=-bound, maxval=bound)
        self.dt_bias = dt_bias_init(keys[5], num_heads)
        self.A_log = jr.uniform(
            keys[6], (num_heads,), minval=math.log(1.0), maxval=math.log(16.0)
        )
        self.D = jnp.ones((num_heads,))
        self.norm_weight = jnp.ones((inner,))
        self.out_proj = lecun(keys[7], features, inner)
        self.in_features = in_features
        self.features = features
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.state_dim = state_dim

    def _conv(
        self, x: Float[Array, "window in_features"]
    ) -> tuple[
        Float[Array, "heads dim"], Float[Array, " state"], Float[Array, " state"]
    ]:
        """The convolved, activated `(x, B, C)` of the current step."""
        xbc = x @ self.xbc_proj.T
        xbc = jax.nn.silu(jnp.sum(self.conv_weight * xbc, axis=0) + self.conv_bias)
        inner = self.num_heads * self.head_dim
        x_conv = xbc[:inner].reshape(self.num_heads, self.head_dim)
        return (
            x_conv,
            xbc[inner : inner + self.state_dim],
            xbc[inner + self.state_dim :],
        )

    def identity(self) -> Mamba2Element:
        return (
            jnp.zeros((self.num_heads, self.head_dim, self.state_dim)),
            jnp.zeros((self.num_heads,)),
        )

    def lift(self, x: Float[Array, "window in_features"]) -> Mamba2Element:
        x_conv, b, _ = self._conv(x)
        dt = jax.nn.softplus(self.dt_proj @ x[-1] + self.dt_bias)
        log_decay = -dt * jnp.exp(self.A_log)
        state = dt[:, None, None] * x_conv[:, :, None] * b[None, None, :]
        return state, log_decay

    def combine(self, a: Mamba2Element, b: Mamba2Element) -> Mamba2Element:
        state_a, log_decay_a = a
        state_b, log_decay_b = b
        decay_b = jnp.exp(log_decay_b)
        return decay_b[:, None, None] * state_a + state_b, log_decay_a + log_decay_b

    @jax.named_scope("memrl_eqx.nn.Mamba2Cell")
    def read(
        self, state: Mamba2Element, x: Float[Array, "window in_features"]
    ) -> Float[Array, " features"]:
        s, _ = state
        x_conv, _, c = self._conv(x)
        z = self.z_proj @ x[-1]
        y = jnp.einsum("hpn,n->hp", s, c) + self.D[:, None] * x_conv
        y = y.reshape(-1)
        y = y * jax.lax.rsqrt(jnp.mean(y**2) + _NORM_EPS) * self.norm_weight
        return self.out_proj @ (y * jax.nn.silu(z))
