"""`LRUCell`: the Linear Recurrent Unit (Orvieto et al. 2023) as a monoid."""

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Complex, Float, PRNGKeyArray

from ._memoroid_cell import AbstractMemoroidCell


LRUElement = tuple[Complex[Array, " hidden_dim"], Complex[Array, " hidden_dim"]]


class LRUCell(AbstractMemoroidCell):
    """The Linear Recurrent Unit: a complex diagonal linear recurrence.

    $h_t = \\lambda \\odot h_{t-1} + \\gamma \\odot (B x_t)$,
    $y_t = \\mathrm{Re}(C h_t) + D x_t$, with
    $\\lambda = \\exp(-e^{\\nu} + i e^{\\theta})$ (stable exponential
    parameterisation, $|\\lambda| < 1$ always) and the normaliser
    $\\gamma = \\sqrt{1 - |\\lambda|^2}$.

    As a monoid an element is `(state, decay)`, both complex of shape
    `(hidden_dim,)`: `lift(x) = (gamma * B x, lambda)`,
    `combine(a, b) = (decay_b * state_a + state_b, decay_b * decay_a)`, identity
    `(0, 1)`. The output is real, shape `(features,)`.

    **Arguments:** `in_features`, `features` (output size), `hidden_dim` (state
    size), `r_min`, `r_max` (range of initial $|\\lambda|$, default 0 and 1),
    `max_phase` (default $2\\pi$), `key` (keyword only).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import LRUCell, Memoroid

    cell = LRUCell(in_features=4, features=8, hidden_dim=16, key=jax.random.key(0))
    x = jnp.ones(4)
    state, decay = cell.combine(cell.identity(), cell.lift(x))  # one step
    assert state.shape == decay.shape == (16,) and state.dtype == jnp.complex64
    assert cell.read((state, decay), x).shape == (8,)

    model = Memoroid(cell)  # over a sequence
    carry, ys = model(model.init_carry(), jnp.ones((5, 4)), jnp.zeros(5, bool))
    assert ys.shape == (5, 8)
    ```
    """

    nu_log: Float[Array, " hidden_dim"]
    theta_log: Float[Array, " hidden_dim"]
    gamma_log: Float[Array, " hidden_dim"]
    B_re: Float[Array, "hidden_dim in_features"]
    B_im: Float[Array, "hidden_dim in_features"]
    C_re: Float[Array, "features hidden_dim"]
    C_im: Float[Array, "features hidden_dim"]
    D: Float[Array, "features in_features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    window: ClassVar[int] = 1
    # The parameters of the recurrence and each one's unit axis: the recurrence is
    # element-wise, so `RTRL` can compute exact online gradients.
    rtrl_parameters: ClassVar[dict[str, int]] = {
        "nu_log": 0,
        "theta_log": 0,
        "gamma_log": 0,
        "B_re": 0,
        "B_im": 0,
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
        key: PRNGKeyArray,
    ):
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(
                f"LRUCell: need 0 <= r_min < r_max <= 1; got r_min={r_min}, "
                f"r_max={r_max}."
            )
        k_nu, k_th, k_bre, k_bim, k_cre, k_cim, k_d = jr.split(key, 7)
        u1 = jr.uniform(k_nu, (hidden_dim,))
        u2 = jr.uniform(k_th, (hidden_dim,))
        # |lambda| uniform on the ring [r_min, r_max] (Orvieto et al., Lemma 3.2).
        self.nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        self.theta_log = jnp.log(max_phase * u2)
        modulus = jnp.exp(-jnp.exp(self.nu_log))
        self.gamma_log = jnp.log(jnp.sqrt(1 - modulus**2))
        scale_b = 1 / math.sqrt(2 * in_features)
        self.B_re = jr.normal(k_bre, (hidden_dim, in_features)) * scale_b
        self.B_im = jr.normal(k_bim, (hidden_dim, in_features)) * scale_b
        scale_c = 1 / math.sqrt(hidden_dim)
        self.C_re = jr.normal(k_cre, (features, hidden_dim)) * scale_c
        self.C_im = jr.normal(k_cim, (features, hidden_dim)) * scale_c
        self.D = jr.normal(k_d, (features, in_features)) / math.sqrt(in_features)
        self.in_features = in_features
        self.features = features
        self.hidden_dim = hidden_dim

    def _decay(self) -> Complex[Array, " hidden_dim"]:
        return jnp.exp(lax.complex(-jnp.exp(self.nu_log), jnp.exp(self.theta_log)))

    def identity(self) -> LRUElement:
        dtype = self._decay().dtype
        return (
            jnp.zeros((self.hidden_dim,), dtype),
            jnp.ones((self.hidden_dim,), dtype),
        )

    def lift(self, x: Float[Array, " in_features"]) -> LRUElement:
        gamma = jnp.exp(self.gamma_log)
        state = lax.complex(gamma * (self.B_re @ x), gamma * (self.B_im @ x))
        return state, self._decay()

    def combine(self, a: LRUElement, b: LRUElement) -> LRUElement:
        state_a, decay_a = a
        state_b, decay_b = b
        return decay_b * state_a + state_b, decay_b * decay_a

    @jax.named_scope("memrl_eqx.nn.LRUCell")
    def read(
        self, state: LRUElement, x: Float[Array, " in_features"]
    ) -> Float[Array, " features"]:
        h, _ = state
        return self.C_re @ h.real - self.C_im @ h.imag + self.D @ x
