"""`MinGRUCell`: the minimal GRU of Feng et al. 2024, in log space, as a monoid."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


MinGRUElement = tuple[Float[Array, " features"], Float[Array, " features"]]


def _log_g(v: Float[Array, " features"]) -> Float[Array, " features"]:
    """$\\log g(v)$ with $g(v) = v + 1/2$ for $v \\ge 0$, $\\sigma(v)$ otherwise.

    Each branch only ever sees arguments where it is finite (the "double where"
    trick), so neither value nor gradient is NaN anywhere."""
    positive = v >= 0
    log_linear = jnp.log(jnp.where(positive, v, 0.0) + 0.5)
    log_sigmoid = -jax.nn.softplus(-jnp.where(positive, 0.0, v))
    return jnp.where(positive, log_linear, log_sigmoid)


def _logaddexp(a: Array, b: Array) -> Array:
    """$\\log(e^a + e^b)$ with finite gradients even where both are $-\\infty$.

    `jnp.logaddexp(-inf, -inf)` has NaN gradients (and a zero cotangent times NaN
    is NaN), which would break exact-zero gradients across a reset. Here no
    $-\\infty - (-\\infty)$ is ever formed."""
    hi = jnp.maximum(a, b)
    lo = jnp.minimum(a, b)
    hi_finite = jnp.where(jnp.isfinite(hi), hi, 0.0)
    return hi + jnp.log1p(jnp.exp(lo - hi_finite))


class MinGRUCell(AbstractMemoroidCell):
    """minGRU ("Were RNNs all we needed?", Feng et al. 2024), in log space.

    $z_t = \\sigma(W_z x_t)$, $\\tilde h_t = W_h x_t$ (no biases),
    $h_t = (1 - z_t) \\odot h_{t-1} + z_t \\odot g(\\tilde h_t)$ with
    $g(v) = v + 1/2$ for $v \\ge 0$ and $\\sigma(v)$ otherwise, $h_0 = 0$; the
    output is $h_t$, shape `(features,)`. Since $g > 0$, $h_t \\ge 0$ always.

    As a monoid the recurrence is kept in log space (so it stays finite over long
    sequences): an element is `(log_state, log_decay)`, both real of shape
    `(features,)`, with `lift(x) = (log σ(z) + log g(h̃), log(1 - σ(z)))`
    (here $\\log(1-\\sigma(z)) = -\\mathrm{softplus}(z)$ and
    $\\log\\sigma(z) = -\\mathrm{softplus}(-z)$), `combine(a, b) =
    (logaddexp(log_decay_b + log_state_a, log_state_b), log_decay_a + log_decay_b)`
    and identity `(-inf, 0)`. `read(state, x) = exp(log_state)`. The log-sum
    used by `combine` has finite gradients at $-\\infty$.

    **Arguments** (keyword only): `in_features`, `features` (state and output
    size), `key`. Both weight matrices are LeCun normal.
    """

    weight_z: Float[Array, "features in_features"]
    weight_h: Float[Array, "features in_features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    window: ClassVar[int] = 1
    # The parameters of the recurrence and each one's unit axis: the recurrence is
    # element-wise, so `RTRL` can compute exact online gradients.
    rtrl_parameters: ClassVar[dict[str, int]] = {"weight_z": 0, "weight_h": 0}

    def __init__(self, *, in_features: int, features: int, key: PRNGKeyArray):
        for name, value in (("in_features", in_features), ("features", features)):
            if value < 1:
                raise ValueError(f"MinGRUCell: `{name}` must be >= 1; got {value}.")
        k_z, k_h = jax.random.split(key)
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        self.weight_z = lecun(k_z, (features, in_features), jnp.float32)
        self.weight_h = lecun(k_h, (features, in_features), jnp.float32)
        self.in_features = in_features
        self.features = features

    def identity(self) -> MinGRUElement:
        dtype = self.weight_z.dtype
        return (
            jnp.full((self.features,), -jnp.inf, dtype),
            jnp.zeros((self.features,), dtype),
        )

    def lift(self, x: Float[Array, " in_features"]) -> MinGRUElement:
        z = self.weight_z @ x
        h_tilde = self.weight_h @ x
        log_state = -jax.nn.softplus(-z) + _log_g(h_tilde)
        log_decay = -jax.nn.softplus(z)
        return log_state, log_decay

    def combine(self, a: MinGRUElement, b: MinGRUElement) -> MinGRUElement:
        log_state_a, log_decay_a = a
        log_state_b, log_decay_b = b
        log_state = _logaddexp(log_decay_b + log_state_a, log_state_b)
        return log_state, log_decay_a + log_decay_b

    @jax.named_scope("memrl_eqx.nn.MinGRUCell")
    def read(
        self, state: MinGRUElement, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        log_state, _ = state
        return jnp.exp(log_state)
