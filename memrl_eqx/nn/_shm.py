"""`SHMCell`: Stable Hadamard Memory (Le et al. 2025)."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt32

from ._cell import AbstractCell


_PERIOD = 2**24
"""The step counter wraps here; float32 holds every integer below it exactly."""


def _hash32(x: UInt32[Array, ""]) -> UInt32[Array, ""]:
    """A 32-bit integer hash with full avalanche ("lowbias32", C. Wellons):
    xor-shifts and multiplications modulo $2^{32}$."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


class SHMCarry(NamedTuple):
    """The state of an `SHMCell`; zero at an episode start."""

    memory: Float[Array, "features features"]
    """$M$, the matrix memory."""
    step: Float[Array, ""]
    """The number of steps taken in the episode (mod $2^{24}$), which selects
    the calibration row $\\theta_t$."""


class SHMCell(AbstractCell):
    """Stable Hadamard Memory: a matrix memory written with an elementwise
    (Hadamard) calibration and a rank-one update.

    With $\\bar x = \\mathrm{LayerNorm}(x_t)$:
    $v = W_v \\bar x$, $k = \\mathrm{relu}(W_k \\bar x)$,
    $q = \\mathrm{relu}(W_q \\bar x)$ (keys and queries L1-normalised,
    $k / (\\sum_j k_j + 10^{-5})$), $v_c = W_c \\bar x$,
    $\\eta = \\sigma(w_\\eta \\cdot \\bar x)$ (every map with a bias), and

    - calibration $C_t = 1 + \\tanh(\\theta_t v_c^\\top)$, entries in $(0, 2)$;
    - update $U_t = (\\eta v) k^\\top$;
    - $M_t = M_{t-1} \\odot C_t + U_t$;
    - $y_t = W_{out} (M_t q) + b_{out}$.

    $\\theta_t$ is a row of the learned table `theta_table` (`num_thetas` rows of
    width `features`). Le et al. draw the row at random each step: a random
    calibration keeps the expected product of the $C_t$ bounded, so the memory
    neither explodes nor vanishes over long episodes.

    **Randomness without a key.** A cell's step takes no key, and the same
    inputs and carry must give the same outputs (so that acting step by step
    equals training on the sequence, and a chunked sequence equals the whole).
    So the carry counts the steps of the episode, and the row of step $t$ is a
    hash of $t$ and `theta_seed` (`theta_index`): a fixed pseudo-random schedule
    of rows, reset with the carry at an episode start and so the same in every
    episode; different `theta_seed`s give different schedules. (A 32-bit integer
    hash rather than a `jax.random` key per step: the same determinism, at a
    fraction of the cost of a threefry draw, in run time and in compile time.)
    With `sample_theta=False` every step uses row 0 (what the Flax original
    does when it has no random stream, e.g. in evaluation). The counter is a
    float32 (the carry must be differentiable like every other carry; it
    carries no gradient) and wraps after $2^{24}$ steps.

    The carry is an `SHMCarry(memory, step)`, `memory` of shape
    `(features, features)`, both zero at an episode start. Everything but the
    calibration and the memory update (the layer norm and all five maps) is
    the input projection. The output has shape `(output_features,)`.

    **Arguments:** `in_features`, `features` (the memory size $F$; the memory
    is $F \\times F$), `output_features` (output size), `num_thetas` (rows of
    the calibration table, default 128), `sample_theta` (default `True`),
    `theta_seed` (the seed of the row schedule, default 0), `key` (keyword
    only). The maps are LeCun normal with zero biases, the table is Glorot
    uniform.
    """

    norm: eqx.nn.LayerNorm
    weight: Float[Array, "4 features in_features"]
    bias: Float[Array, "4 features"]
    eta_weight: Float[Array, " in_features"]
    eta_bias: Float[Array, ""]
    theta_table: Float[Array, "num_thetas features"]
    weight_out: Float[Array, "output_features features"]
    bias_out: Float[Array, " output_features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    output_features: int = eqx.field(static=True)
    num_thetas: int = eqx.field(static=True)
    sample_theta: bool = eqx.field(static=True)
    theta_seed: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        output_features: int,
        num_thetas: int = 128,
        sample_theta: bool = True,
        theta_seed: int = 0,
        key: PRNGKeyArray,
    ):
        if num_thetas < 1:
            raise ValueError(
                f"SHMCell: num_thetas must be at least 1; got num_thetas={num_thetas}."
            )
        k_w, k_eta, k_theta, k_out = jr.split(key, 4)
        self.norm = eqx.nn.LayerNorm(in_features)
        self.weight = jr.normal(k_w, (4, features, in_features)) / math.sqrt(
            in_features
        )
        self.bias = jnp.zeros((4, features))
        self.eta_weight = jr.normal(k_eta, (in_features,)) / math.sqrt(in_features)
        self.eta_bias = jnp.zeros(())
        bound = math.sqrt(6 / (num_thetas + features))
        self.theta_table = jr.uniform(
            k_theta, (num_thetas, features), minval=-bound, maxval=bound
        )
        self.weight_out = jr.normal(k_out, (output_features, features)) / math.sqrt(
            features
        )
        self.bias_out = jnp.zeros((output_features,))
        self.in_features = in_features
        self.features = features
        self.output_features = output_features
        self.num_thetas = num_thetas
        self.sample_theta = sample_theta
        self.theta_seed = theta_seed

    def init_carry(self) -> SHMCarry:
        dtype = self.theta_table.dtype
        return SHMCarry(
            memory=jnp.zeros((self.features, self.features), dtype),
            step=jnp.zeros((), dtype),
        )

    def theta_index(self, step: Float[Array, ""]) -> Int[Array, ""]:
        """The row of `theta_table` used at episode step `step`:
        `hash32(t ^ hash32(theta_seed + 0x9E3779B9)) % num_thetas` with
        $t = \\lfloor step \\rfloor$ (clipped to $[0, 2^{24})$), or 0 without
        sampling."""
        if not self.sample_theta:
            return jnp.zeros((), jnp.int32)
        t = jnp.clip(step, 0, _PERIOD - 1).astype(jnp.uint32)
        mix = _hash32(jnp.uint32((self.theta_seed + 0x9E3779B9) % 2**32))
        return (_hash32(t ^ mix) % self.num_thetas).astype(jnp.int32)

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, "4 features"]:
        """Rows `(eta * v, k, q, v_c)`."""
        x = self.norm(x)
        v, k, q, v_c = self.weight @ x + self.bias
        eta = jax.nn.sigmoid(jnp.dot(self.eta_weight, x) + self.eta_bias)
        k = jax.nn.relu(k)
        q = jax.nn.relu(q)
        k = k / (jnp.sum(k) + 1e-5)
        q = q / (jnp.sum(q) + 1e-5)
        return jnp.stack([eta * v, k, q, v_c])

    @jax.named_scope("memrl_eqx.nn.SHMCell")
    def recurrence(
        self, carry: SHMCarry, u: Float[Array, "4 features"]
    ) -> tuple[SHMCarry, Float[Array, " output_features"]]:
        eta_v, k, q, v_c = u
        theta = self.theta_table[self.theta_index(carry.step)]
        calibration = 1 + jnp.tanh(theta[:, None] * v_c[None, :])
        memory = carry.memory * calibration + eta_v[:, None] * k[None, :]
        y = self.weight_out @ (memory @ q) + self.bias_out
        step = jnp.mod(carry.step + 1, _PERIOD)
        return SHMCarry(memory=memory, step=step), y
