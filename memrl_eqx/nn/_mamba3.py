"""`Mamba3Cell`: the Mamba-3 state-space layer (Lahoti et al. 2026) as a monoid."""

import math
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Complex, Float, PRNGKeyArray

from ._delta_net import check_sizes
from ._mamba2 import dt_bias_init, lecun
from ._memoroid_cell import AbstractMemoroidCell


_NORM_EPS = 1e-5


class Mamba3Element(NamedTuple):
    """A segment of the Mamba-3 recurrence as the affine map $h \\mapsto$
    `decay` $h$ + `state` of the state before it.

    Shapes: `state` complex `(num_heads, state_dim // 2, head_dim)`; `decay`
    complex `(num_heads, state_dim // 2)`.
    """

    state: Complex[Array, "num_heads half head_dim"]
    decay: Complex[Array, "num_heads half"]


def _complex(re: Float[Array, "*shape"]) -> Complex[Array, "*shape"]:
    return lax.complex(re, jnp.zeros_like(re))


class Mamba3Cell(AbstractMemoroidCell):
    """The Mamba-3 layer (Lahoti et al. 2026, "Mamba-3: Improved Sequence
    Modeling using State Space Principles"), single-input single-output: a
    selective state space with a complex, data-dependent rotating decay and the
    exponential-trapezoidal (two-tap) update, as a monoid.

    **Step.** With inner width `num_heads * head_dim`, $n$ = `state_dim // 2`
    complex state dimensions and $x_t$ the input:

    - $x^\\text{in}_t$ (per head `(head_dim,)`) and the gate $z_t$: linear
      projections of $x_t$; no convolution;
    - $B_t, C_t$: $\\mathrm{RMSNorm}(W x_t)$ (`state_dim`, shared by the heads)
      plus a per-head bias initialised to 1, their halves packed as the real and
      imaginary parts of $n$ complex numbers;
    - per head, $\\Delta_t = \\mathrm{softplus}(W_\\Delta x_t + b_\\Delta)$,
      $A_t = -\\mathrm{softplus}(W_A x_t + b_A)$, $\\lambda_t =
      \\sigma(W_\\lambda x_t + b_\\lambda)$; per head and complex dimension the
      angle $\\theta_t = \\pi\\,(2\\sigma(2 (W_\\theta x_t + b_\\theta)) - 1)
      = \\pi \\tanh(W_\\theta x_t + b_\\theta)$;
    - decay $\\alpha_t = e^{\\Delta_t A_t + i \\Delta_t \\theta_t}$,
      $\\beta_t = (1 - \\lambda_t) \\Delta_t \\alpha_t$, $\\gamma_t =
      \\lambda_t \\Delta_t$, input $u_t = B_t \\otimes x^\\text{in}_t$;
    - $h_t = \\alpha_t h_{t-1} + \\beta_t u_{t-1} + \\gamma_t u_t$, with
      $h = 0$ and $u = 0$ before an episode's first step;
    - $y_t = \\mathrm{Re}(\\bar C_t \\cdot h_t) + D \\odot x^\\text{in}_t$ per
      head, then $W_\\text{out}(y_t \\odot \\mathrm{silu}(z_t))$, shape
      `(features,)`.

    **Element** a `Mamba3Element` NamedTuple `(state, decay)`: the step as
    the affine map $h_{t-1} \\mapsto \\alpha_t h_{t-1} + v_t$ with $v_t =
    \\beta_t u_{t-1} + \\gamma_t u_t$, a diagonal complex recurrence over a
    pre-mixed input. `combine(a, b)` $= (d_b s_a + s_b,\\ d_b d_a)$; the
    identity is $(0, 1)$. The decays are complex with modulus $< 1$, so a long
    segment's product underflows to 0, never to NaN.

    **Input window.** The two-tap term needs the previous step's input, so the
    class variable `window = 2`: `lift` and `read` receive `x` of shape
    `(2, in_features)`, previous step first, and `Memoroid` carries that input
    and zeroes it at an episode start. $u$ is linear in $x$ (the projection of
    $x^\\text{in}$ has no bias), so a zeroed row gives $u_{t-1} = 0$ exactly:
    the previous episode's last input never reaches the next. The Flax original
    instead carries $u_t$ inside a four-field element `(state, state_input,
    decay, beta)`; the recurrence is the same, and this element is half the
    size, with an identity that is an identity on both sides.

    **Arguments** (keyword only):

    - `in_features`: the input size.
    - `features`: the output size.
    - `num_heads`: the number of heads (default 8).
    - `head_dim`: the width of each head (default 16).
    - `state_dim`: the real state size per head, even; the complex state has
      `state_dim // 2` dimensions (default 16).
    - `key`: a PRNG key for the initial parameters.

    **Initialisation:** $b_\\Delta$ as in Mamba-2 (the inverse softplus of a
    log-uniform step in $[10^{-3}, 10^{-1}]$); $b_A = b_\\theta = b_\\lambda
    = 0$; the $B$, $C$ biases, RMSNorm scales and $D$ equal to 1; projections
    LeCun normal.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import Mamba3Cell, Memoroid

    cell = Mamba3Cell(in_features=4, features=8, num_heads=2, head_dim=4,
                      state_dim=6, key=jax.random.key(0))
    window = jnp.stack([jnp.zeros(4), jnp.ones(4)])  # previous, current input
    element = cell.combine(cell.identity(), cell.lift(window))  # one step
    assert element.state.shape == (2, 3, 4) and element.decay.shape == (2, 3)
    model = Memoroid(cell)  # over a sequence
    carry, ys = model(model.init_carry(), jnp.ones((5, 4)), jnp.zeros(5, bool))
    assert ys.shape == (5, 8)
    ```
    """

    x_proj: Float[Array, "inner in_features"]
    z_proj: Float[Array, "inner in_features"]
    bc_proj: Float[Array, "two_state in_features"]
    bc_norm: Float[Array, "2 state_dim"]
    bc_bias: Float[Array, "2 num_heads state_dim"]
    dt_proj: Float[Array, "num_heads in_features"]
    dt_bias: Float[Array, " num_heads"]
    A_proj: Float[Array, "num_heads in_features"]
    A_bias: Float[Array, " num_heads"]
    theta_proj: Float[Array, "heads_half in_features"]
    theta_bias: Float[Array, " heads_half"]
    lambda_proj: Float[Array, "num_heads in_features"]
    lambda_bias: Float[Array, " num_heads"]
    D: Float[Array, " num_heads"]
    out_proj: Float[Array, "features inner"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    state_dim: int = eqx.field(static=True)
    window: ClassVar[int] = 2

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
        check_sizes(
            "Mamba3Cell",
            in_features=in_features,
            features=features,
            num_heads=num_heads,
            head_dim=head_dim,
            state_dim=state_dim,
        )
        if state_dim % 2:
            raise ValueError(
                "Mamba3Cell: `state_dim` must be even (its halves are the real "
                f"and imaginary parts of the complex state); got {state_dim}."
            )
        inner = num_heads * head_dim
        half = state_dim // 2
        keys = jr.split(key, 9)
        self.x_proj = lecun(keys[0], inner, in_features)
        self.z_proj = lecun(keys[1], inner, in_features)
        self.bc_proj = lecun(keys[2], 2 * state_dim, in_features)
        self.bc_norm = jnp.ones((2, state_dim))
        self.bc_bias = jnp.ones((2, num_heads, state_dim))
        self.dt_proj = lecun(keys[3], num_heads, in_features)
        self.dt_bias = dt_bias_init(keys[4], num_heads)
        self.A_proj = lecun(keys[5], num_heads, in_features)
        self.A_bias = jnp.zeros((num_heads,))
        self.theta_proj = lecun(keys[6], num_heads * half, in_features)
        self.theta_bias = jnp.zeros((num_heads * half,))
        self.lambda_proj = lecun(keys[7], num_heads, in_features)
        self.lambda_bias = jnp.zeros((num_heads,))
        self.D = jnp.ones((num_heads,))
        self.out_proj = lecun(keys[8], features, inner)
        self.in_features = in_features
        self.features = features
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.state_dim = state_dim

    def _x_in(self, x: Float[Array, " in_features"]) -> Float[Array, "heads dim"]:
        return (self.x_proj @ x).reshape(self.num_heads, self.head_dim)

    def _bc(
        self, x: Float[Array, " in_features"], which: int
    ) -> Complex[Array, "heads half"]:
        """$B_t$ (`which=0`) or $C_t$ (`which=1`) per head, packed complex."""
        n = self.state_dim
        v = self.bc_proj[which * n : (which + 1) * n] @ x
        v = v * lax.rsqrt(jnp.mean(v**2) + _NORM_EPS) * self.bc_norm[which]
        v = v[None, :] + self.bc_bias[which]
        return lax.complex(v[:, : n // 2], v[:, n // 2 :])

    def _u(self, x: Float[Array, " in_features"]) -> Complex[Array, "heads half dim"]:
        """$u = B \\otimes x^\\text{in}$ per head; 0 when `x` is 0."""
        return self._bc(x, 0)[:, :, None] * _complex(self._x_in(x))[:, None, :]

    def identity(self) -> Mamba3Element:
        half = self.state_dim // 2
        return Mamba3Element(
            state=_complex(jnp.zeros((self.num_heads, half, self.head_dim))),
            decay=_complex(jnp.ones((self.num_heads, half))),
        )

    def lift(self, x: Float[Array, "2 in_features"]) -> Mamba3Element:
        half = self.state_dim // 2
        x_prev, x_now = x[0], x[1]
        dt = jax.nn.softplus(self.dt_proj @ x_now + self.dt_bias)
        a = -jax.nn.softplus(self.A_proj @ x_now + self.A_bias)
        theta = math.pi * jnp.tanh(self.theta_proj @ x_now + self.theta_bias)
        theta = theta.reshape(self.num_heads, half)
        lam = jax.nn.sigmoid(self.lambda_proj @ x_now + self.lambda_bias)
        log_modulus = jnp.broadcast_to((dt * a)[:, None], theta.shape)
        decay = jnp.exp(lax.complex(log_modulus, dt[:, None] * theta))
        beta = _complex((1 - lam) * dt)[:, None] * decay
        gamma = _complex(lam * dt)[:, None, None]
        state = beta[..., None] * self._u(x_prev) + gamma * self._u(x_now)
        return Mamba3Element(state=state, decay=decay)

    def combine(self, a: Mamba3Element, b: Mamba3Element) -> Mamba3Element:
        return Mamba3Element(
            state=b.decay[..., None] * a.state + b.state, decay=b.decay * a.decay
        )

    @jax.named_scope("memrl_eqx.nn.Mamba3Cell")
    def read(
        self, state: Mamba3Element, x: Float[Array, "2 in_features"]
    ) -> Float[Array, " features"]:
        h, x = state.state, x[-1]
        c = self._bc(x, 1)
        # Re(conj(C) h) = Re(C) Re(h) + Im(C) Im(h), summed over the state.
        y = jnp.einsum("hn,hnp->hp", c.real, h.real) + jnp.einsum(
            "hn,hnp->hp", c.imag, h.imag
        )
        y = y + self.D[:, None] * self._x_in(x)
        z = self.z_proj @ x
        return self.out_proj @ (y.reshape(-1) * jax.nn.silu(z))
