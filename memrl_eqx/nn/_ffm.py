"""`FFMCell`: Fast and Forgetful Memory (Morad et al. 2023) as a monoid."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Complex, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


FFMElement = tuple[Complex[Array, "memory_size context_size"], Float[Array, ""]]


class FFMCell(AbstractMemoroidCell):
    """Fast and Forgetful Memory: a decaying, oscillating complex memory.

    Aggregator: with the decay $\\gamma(t) = \\exp(t(\\alpha + i\\omega))$, an
    `memory_size × context_size` complex matrix (outer sum of
    $\\alpha = -|a| \\in \\mathbb{R}^{m}$ and $\\omega \\in \\mathbb{R}^{c}$),

    $S_t = \\gamma(1) \\odot S_{t-1} + \\tilde x_t \\mathbf{1}_c^\\top$,
    $\\tilde x_t = (W_1 x_t + b_1) \\odot \\sigma(W_2 x_t + b_2) \\in \\mathbb{R}^m$,
    $S_0 = 0$.

    Output (the paper's FFM block): $z_t = W_o [\\mathrm{Re}\\,S_t, \\mathrm{Im}\\,S_t]
    + b_o$ (flattened), $g_t = \\sigma(W_g x_t + b_g)$,
    $y_t = \\mathrm{LN}(z_t) \\odot g_t + (W_s x_t + b_s) \\odot (1 - g_t)$, where
    LN is a layer norm without scale or offset. Shape `(features,)`.

    As a monoid an element is `(S, t)`: `S` complex64
    `(memory_size, context_size)` and `t` a float32 scalar, the *relative* number
    of steps the element spans. `lift(x) = (x̃ broadcast over the context, 1)`,
    `combine(a, b) = (S_a * γ(t_b) + S_b, t_a + t_b)`, identity `(0, 0)`. Because
    only relative times enter, any split of a sequence into chunks gives the same
    result (unlike an absolute time index that restarts in every call).

    **Arguments** (keyword only): `in_features`, `features` (output size),
    `memory_size` (m, the decay dimension), `context_size` (c, the frequency
    dimension), `min_period`, `max_period` (default 1 and 1024), `key`.

    Initialisation: $a = \\mathrm{linspace}(10^{-6}, 1/2, m)$,
    $\\omega = 2\\pi / \\mathrm{linspace}(\\text{min\\_period}, \\text{max\\_period},
    c)$, both trained; weights LeCun normal, biases zero.
    """

    a: Float[Array, " memory_size"]
    omega: Float[Array, " context_size"]
    weight_in: Float[Array, "memory_size in_features"]
    bias_in: Float[Array, " memory_size"]
    weight_in_gate: Float[Array, "memory_size in_features"]
    bias_in_gate: Float[Array, " memory_size"]
    weight_out: Float[Array, "features state"]
    bias_out: Float[Array, " features"]
    weight_gate: Float[Array, "features in_features"]
    bias_gate: Float[Array, " features"]
    weight_skip: Float[Array, "features in_features"]
    bias_skip: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    memory_size: int = eqx.field(static=True)
    context_size: int = eqx.field(static=True)
    window: ClassVar[int] = 1

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        memory_size: int,
        context_size: int,
        min_period: int | float = 1,
        max_period: int | float = 1024,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_features", in_features),
            ("features", features),
            ("memory_size", memory_size),
            ("context_size", context_size),
        ):
            if value < 1:
                raise ValueError(f"FFMCell: `{name}` must be >= 1; got {value}.")
        if not 0 < min_period <= max_period:
            raise ValueError(
                f"FFMCell: need 0 < min_period <= max_period; got "
                f"min_period={min_period}, max_period={max_period}."
            )
        k_in, k_in_gate, k_out, k_gate, k_skip = jr.split(key, 5)
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        m, c = memory_size, context_size
        self.a = jnp.linspace(1e-6, 0.5, m, dtype=jnp.float32)
        periods = jnp.linspace(min_period, max_period, c, dtype=jnp.float32)
        self.omega = 2 * math.pi / periods
        self.weight_in = lecun(k_in, (m, in_features), jnp.float32)
        self.bias_in = jnp.zeros((m,))
        self.weight_in_gate = lecun(k_in_gate, (m, in_features), jnp.float32)
        self.bias_in_gate = jnp.zeros((m,))
        self.weight_out = lecun(k_out, (features, 2 * m * c), jnp.float32)
        self.bias_out = jnp.zeros((features,))
        self.weight_gate = lecun(k_gate, (features, in_features), jnp.float32)
        self.bias_gate = jnp.zeros((features,))
        self.weight_skip = lecun(k_skip, (features, in_features), jnp.float32)
        self.bias_skip = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.memory_size = memory_size
        self.context_size = context_size

    def gamma(self, t: Float[Array, ""]) -> Complex[Array, "memory_size context_size"]:
        """$\\gamma(t) = \\exp(t(\\alpha + i\\omega))$, shape
        `(memory_size, context_size)`."""
        magnitude = jnp.exp(-jnp.abs(self.a) * t)[:, None]
        phase = (self.omega * t)[None, :]
        return lax.complex(magnitude * jnp.cos(phase), magnitude * jnp.sin(phase))

    def identity(self) -> FFMElement:
        shape = (self.memory_size, self.context_size)
        dtype = jnp.result_type(lax.complex(self.a, self.a))
        return jnp.zeros(shape, dtype), jnp.zeros((), self.a.dtype)

    def lift(self, x: Float[Array, " in_features"]) -> FFMElement:
        x_tilde = (self.weight_in @ x + self.bias_in) * jax.nn.sigmoid(
            self.weight_in_gate @ x + self.bias_in_gate
        )
        real = jnp.broadcast_to(x_tilde[:, None], (self.memory_size, self.context_size))
        return lax.complex(real, jnp.zeros_like(real)), jnp.ones((), x_tilde.dtype)

    def combine(self, a: FFMElement, b: FFMElement) -> FFMElement:
        s_a, t_a = a
        s_b, t_b = b
        return s_a * self.gamma(t_b) + s_b, t_a + t_b

    @jax.named_scope("memrl_eqx.nn.FFMCell")
    def read(
        self, state: FFMElement, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        s, _ = state
        flat = jnp.concatenate([s.real.reshape(-1), s.imag.reshape(-1)])
        z = self.weight_out @ flat + self.bias_out
        centred = z - jnp.mean(z)
        normed = centred * lax.rsqrt(jnp.mean(centred**2) + 1e-5)
        gate = jax.nn.sigmoid(self.weight_gate @ x + self.bias_gate)
        skip = self.weight_skip @ x + self.bias_skip
        return normed * gate + skip * (1 - gate)
