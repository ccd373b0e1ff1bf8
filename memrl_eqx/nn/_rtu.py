"""`RTUCell`: Recurrent Trace Units (Elelimy et al. 2024)."""

import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


RTUCarry = tuple[Float[Array, " hidden_dim"], Float[Array, " hidden_dim"]]


class RTUCell(AbstractCell):
    """A recurrent trace unit: a diagonal complex rotation written in real
    arithmetic, with a nonlinearity in the recurrence.

    Each of the `hidden_dim` units holds a pair $(h^{re}, h^{im})$ that is
    rotated by $\\theta$ and scaled by $r$ every step:
    $r = e^{-e^{\\nu}}$, $\\theta = e^{\\theta_{log}}$, $g = r\\cos\\theta$,
    $\\varphi = r\\sin\\theta$, $\\gamma = \\sqrt{1 - r^2} + \\epsilon$,

    $h^{re}_t = f(g\\,h^{re}_{t-1} - \\varphi\\,h^{im}_{t-1} + \\gamma B^{re} x_t)$,
    $h^{im}_t = f(g\\,h^{im}_{t-1} + \\varphi\\,h^{re}_{t-1} + \\gamma B^{im} x_t)$,

    $y_t = W_{out} [h^{re}_t; h^{im}_t] + b_{out}$.

    This is the LRU's $\\lambda = r e^{i\\theta}$ with the complex product
    expanded into real and imaginary parts, so it needs no complex dtype, and
    $|\\lambda| = r < 1$ always. The carry is `(h_re, h_im)`, each shape
    `(hidden_dim,)`, zero at an episode start. $B^{re} x$ and $B^{im} x$ are the
    input projection.

    The RTU's own output is $[h^{re}; h^{im}]$, width `2 * hidden_dim`; the linear
    read-out $W_{out}$ maps it to `features`, so that `features` is the output
    width here as for every other cell, and a torso's width does not depend on
    the state size. (It is a read-out outside the recurrence, so the recurrence
    stays diagonal, as RTRL needs.)

    **Arguments:** `in_features`, `features` (output size), `hidden_dim` (number
    of complex units), `r_min`, `r_max` (range of the initial $r$, default 0 and
    1), `max_phase` (initial $\\theta$ uniform in $[0, \\text{max\\_phase}]$,
    default $2\\pi$), `activation` $f$ (default `jnp.tanh`), `eps` (default
    1e-8), `key` (keyword only). $\\nu$ and $\\theta$ are initialised as in the
    LRU ($r$ uniform on the ring $[r_{min}, r_{max}]$), $B$ is LeCun normal,
    $W_{out}$ LeCun normal with zero bias.
    """

    nu_log: Float[Array, " hidden_dim"]
    theta_log: Float[Array, " hidden_dim"]
    B: Float[Array, "2 hidden_dim in_features"]
    weight_out: Float[Array, "features two_hidden"]
    bias_out: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    # The parameters of the recurrence and each one's unit axis: the recurrence is
    # element-wise, so `RTRL` can compute exact online gradients.
    rtrl_parameters: ClassVar[dict[str, int]] = {
        "nu_log": 0,
        "theta_log": 0,
        "B": 1,
    }

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        hidden_dim: int,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        activation: Callable[[Array], Array] = jnp.tanh,
        eps: float = 1e-8,
        key: PRNGKeyArray,
    ):
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(
                f"RTUCell: need 0 <= r_min < r_max <= 1; got r_min={r_min}, "
                f"r_max={r_max}."
            )
        if not max_phase > 0:
            raise ValueError(f"RTUCell: max_phase must be positive; got {max_phase}.")
        k_nu, k_th, k_b, k_out = jr.split(key, 4)
        u1 = jr.uniform(k_nu, (hidden_dim,))
        u2 = jr.uniform(k_th, (hidden_dim,))
        self.nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        self.theta_log = jnp.log(max_phase * u2)
        self.B = jr.normal(k_b, (2, hidden_dim, in_features)) / math.sqrt(in_features)
        self.weight_out = jr.normal(k_out, (features, 2 * hidden_dim)) / math.sqrt(
            2 * hidden_dim
        )
        self.bias_out = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.hidden_dim = hidden_dim
        self.eps = eps
        self.activation = activation

    def init_carry(self) -> RTUCarry:
        zeros = jnp.zeros((self.hidden_dim,), self.nu_log.dtype)
        return zeros, zeros

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, "2 hidden_dim"]:
        r = jnp.exp(-jnp.exp(self.nu_log))
        gamma = jnp.sqrt(1 - r**2) + self.eps
        return gamma[None] * (self.B @ x)

    @jax.named_scope("memrl_eqx.nn.RTUCell")
    def recurrence(
        self, carry: RTUCarry, u: Float[Array, "2 hidden_dim"]
    ) -> tuple[RTUCarry, Float[Array, " features"]]:
        h_re, h_im = carry
        r = jnp.exp(-jnp.exp(self.nu_log))
        theta = jnp.exp(self.theta_log)
        g = r * jnp.cos(theta)
        phi = r * jnp.sin(theta)
        new_re = self.activation(g * h_re - phi * h_im + u[0])
        new_im = self.activation(g * h_im + phi * h_re + u[1])
        y = self.weight_out @ jnp.concatenate([new_re, new_im]) + self.bias_out
        return (new_re, new_im), y
