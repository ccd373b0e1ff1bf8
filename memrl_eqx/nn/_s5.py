"""`S5Cell`: the simplified structured state-space layer (Smith et al. 2023)."""

import math
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Complex, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


S5Element = tuple[Complex[Array, " hidden_dim"], Complex[Array, " hidden_dim"]]


def hippo_n_eigendecomposition(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of HiPPO-N, the normal part of HiPPO-LegS.

    HiPPO-LegS is $A_{nk} = -\\sqrt{(2n+1)(2k+1)}$ for $n > k$, $-(n+1)$ for
    $n = k$ and $0$ for $n < k$; with $P_n = \\sqrt{n + 1/2}$ its normal part is
    $A_N = A + P P^\\top = -\\tfrac12 I + S$, $S$ real skew-symmetric. So
    $A_N = V \\mathrm{diag}(\\Lambda) V^{H}$ with $V$ unitary and
    $\\Lambda = -\\tfrac12 + i w$, where $(w, V)$ is the Hermitian
    eigendecomposition of $-iS$. Computed in float64 with numpy.

    Returns `(Lambda, V)`: complex128 arrays of shapes `(n,)` and `(n, n)`.
    """
    p = np.sqrt(2.0 * np.arange(n) + 1.0)
    lower = np.tril(0.5 * p[:, None] * p[None, :], -1)
    skew = lower.T - lower  # -p_n p_k / 2 below the diagonal, +p_n p_k / 2 above.
    w, v = np.linalg.eigh(-1j * skew)
    return -0.5 + 1j * w, v


class S5Cell(AbstractMemoroidCell):
    """S5: a diagonal complex state-space model, discretised per state.

    Continuous system $h' = \\Lambda h + \\tilde B x$, $y = \\mathrm{Re}(\\tilde C h)
    + D x$ with $\\Lambda$ the eigenvalues of HiPPO-N (the normal part of the
    HiPPO-LegS matrix, $\\mathrm{Re}\\,\\Lambda = -1/2$), $\\tilde B = V^{-1} B$
    and $\\tilde C = C V$ in its eigenbasis $V$ (all hidden_dim eigenvalues are
    kept; no conjugate-symmetry halving). Each state has its own step
    $\\Delta = \\text{step\\_rescale} \\cdot e^{\\log \\Delta}$ with
    $\\log\\Delta \\sim U(\\log \\text{dt\\_min}, \\log \\text{dt\\_max})$ at
    initialisation. Discretisation:

    - `"zoh"`: $\\bar\\Lambda = e^{\\Lambda \\Delta}$,
      $\\bar B = (\\bar\\Lambda - 1)/\\Lambda \\cdot \\tilde B$;
    - `"bilinear"`: $\\bar\\Lambda = (1 + \\Delta\\Lambda/2)/(1 - \\Delta\\Lambda/2)$,
      $\\bar B = \\Delta/(1 - \\Delta\\Lambda/2) \\cdot \\tilde B$.

    Then $h_t = \\bar\\Lambda \\odot h_{t-1} + \\bar B x_t$ and
    $y_t = \\mathrm{Re}(\\tilde C h_t) + D x_t$.

    As a monoid an element is `(state, decay)`, both complex64 of shape
    `(hidden_dim,)`: `lift(x) = (B̄ x, Λ̄)`, `combine(a, b) = (decay_b * state_a
    + state_b, decay_b * decay_a)`, identity `(0, 1)` (as `LRUCell`). The output
    is real, shape `(features,)`. $|\\bar\\Lambda| < 1$ while
    $\\mathrm{Re}\\,\\Lambda < 0$ (true at initialisation; $\\Lambda$ is trained
    freely, as in the paper).

    **Arguments** (keyword only):

    - `in_features`, `features` (output size), `hidden_dim` (state size P);
    - `discretization`: `"zoh"` (default) or `"bilinear"`;
    - `dt_min`, `dt_max`: range of the initial steps (default 1e-3 and 0.1);
    - `step_rescale`: multiplies every step (default 1.0);
    - `key`.

    Initialisation: $B$ (real, `hidden_dim × in_features`) is LeCun normal;
    $C$ is complex with real and imaginary parts $\\sim N(0, 1/\\text{hidden\\_dim})$;
    $D \\sim N(0, 1)$, a vector (elementwise feedthrough) when
    `in_features == features`, else a `features × in_features` matrix scaled by
    $1/\\sqrt{\\text{in\\_features}}$. $\\Lambda$, $\\tilde B$ and $\\tilde C$ are
    computed in float64 and stored as float32 real and imaginary parts.
    """

    Lambda_re: Float[Array, " hidden_dim"]
    Lambda_im: Float[Array, " hidden_dim"]
    B_re: Float[Array, "hidden_dim in_features"]
    B_im: Float[Array, "hidden_dim in_features"]
    C_re: Float[Array, "features hidden_dim"]
    C_im: Float[Array, "features hidden_dim"]
    D: Float[Array, "features in_features"] | Float[Array, " features"]
    log_step: Float[Array, " hidden_dim"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    discretization: Literal["zoh", "bilinear"] = eqx.field(static=True)
    step_rescale: int | float = eqx.field(static=True)
    window: ClassVar[int] = 1
    # The parameters of the recurrence and each one's unit axis: the recurrence is
    # element-wise, so `RTRL` can compute exact online gradients.
    rtrl_parameters: ClassVar[dict[str, int]] = {
        "Lambda_re": 0,
        "Lambda_im": 0,
        "B_re": 0,
        "B_im": 0,
        "log_step": 0,
    }

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        hidden_dim: int,
        discretization: Literal["zoh", "bilinear"] = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        step_rescale: int | float = 1.0,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_features", in_features),
            ("features", features),
            ("hidden_dim", hidden_dim),
        ):
            if value < 1:
                raise ValueError(f"S5Cell: `{name}` must be >= 1; got {value}.")
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(
                "S5Cell: `discretization` must be 'zoh' or 'bilinear'; "
                f"got {discretization!r}."
            )
        if not 0.0 < dt_min <= dt_max:
            raise ValueError(
                f"S5Cell: need 0 < dt_min <= dt_max; got dt_min={dt_min}, "
                f"dt_max={dt_max}."
            )
        if not step_rescale > 0.0:
            raise ValueError(
                f"S5Cell: `step_rescale` must be positive; got {step_rescale}."
            )
        k_b, k_cre, k_cim, k_d, k_step = jr.split(key, 5)
        lam, v = hippo_n_eigendecomposition(hidden_dim)
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        b = np.asarray(lecun(k_b, (hidden_dim, in_features), jnp.float32), np.float64)
        scale_c = 1 / math.sqrt(hidden_dim)
        c = np.asarray(jr.normal(k_cre, (features, hidden_dim)), np.float64) + 1j * (
            np.asarray(jr.normal(k_cim, (features, hidden_dim)), np.float64)
        )
        b_tilde = v.conj().T @ b  # V^{-1} = V^H, V unitary.
        c_tilde = (c * scale_c) @ v
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        self.Lambda_re = f32(lam.real)
        self.Lambda_im = f32(lam.imag)
        self.B_re = f32(b_tilde.real)
        self.B_im = f32(b_tilde.imag)
        self.C_re = f32(c_tilde.real)
        self.C_im = f32(c_tilde.imag)
        if in_features == features:
            self.D = jr.normal(k_d, (features,))
        else:
            self.D = jr.normal(k_d, (features, in_features)) / math.sqrt(in_features)
        self.log_step = jr.uniform(
            k_step,
            (hidden_dim,),
            minval=math.log(dt_min),
            maxval=math.log(dt_max),
        )
        self.in_features = in_features
        self.features = features
        self.hidden_dim = hidden_dim
        self.discretization = discretization
        self.step_rescale = step_rescale

    def discretise(
        self,
    ) -> tuple[Complex[Array, " hidden_dim"], Complex[Array, "hidden_dim in_features"]]:
        """The discrete decay $\\bar\\Lambda$ and input matrix $\\bar B$."""
        lam = lax.complex(self.Lambda_re, self.Lambda_im)
        step = self.step_rescale * jnp.exp(self.log_step)
        step_c = lax.complex(step, jnp.zeros_like(step))
        b_tilde = lax.complex(self.B_re, self.B_im)
        if self.discretization == "zoh":
            decay = jnp.exp(lam * step_c)
            scale = jnp.expm1(lam * step_c) / lam  # (decay - 1) / lam, accurately.
        else:
            inverse = 1 / (1 - step_c / 2 * lam)
            decay = inverse * (1 + step_c / 2 * lam)
            scale = inverse * step_c
        return decay, scale[:, None] * b_tilde

    def identity(self) -> S5Element:
        dtype = jnp.result_type(lax.complex(self.Lambda_re, self.Lambda_im))
        return (
            jnp.zeros((self.hidden_dim,), dtype),
            jnp.ones((self.hidden_dim,), dtype),
        )

    def lift(self, x: Float[Array, " in_features"]) -> S5Element:
        decay, b_bar = self.discretise()
        state = lax.complex(b_bar.real @ x, b_bar.imag @ x)
        return state, decay

    def combine(self, a: S5Element, b: S5Element) -> S5Element:
        state_a, decay_a = a
        state_b, decay_b = b
        return decay_b * state_a + state_b, decay_b * decay_a

    @jax.named_scope("memrl_eqx.nn.S5Cell")
    def read(
        self, state: S5Element, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        h, _ = state
        feedthrough = self.D * x if self.D.ndim == 1 else self.D @ x
        return self.C_re @ h.real - self.C_im @ h.imag + feedthrough
