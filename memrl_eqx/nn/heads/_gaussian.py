"""`Gaussian` and `SquashedGaussian`: policy heads for continuous actions."""

from collections.abc import Sequence

import distrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear


class _MultivariateNormalDiag(distrax.MultivariateNormalDiag):
    """`distrax.MultivariateNormalDiag` whose `sample_and_log_prob` does not rely
    on implicit rank promotion (distrax adds a `(n, *batch)` log-prob to a
    `(*batch)` one), so it also works under `jax_numpy_rank_promotion="raise"`."""

    def _sample_n_and_log_prob(self, key, n):
        samples = self._sample_n(key, n)
        return samples, jax.vmap(self.log_prob)(samples)


class _ScaledTanh(distrax.Bijector):
    """The elementwise bijector `y = shift + scale * tanh(x)` (from the real line
    onto `(shift - scale, shift + scale)`).

    `log|dy/dx| = log(scale) + log(1 - tanh(x)^2)`, the second term in the stable
    form `2 * (log 2 - x - softplus(-2x))`. `tanh(x)` is clipped to the largest
    float below 1 in magnitude, in both directions: samples stay strictly inside
    the bounds although float32 `tanh` rounds to ±1 beyond |x| ≈ 9, and actions at
    the bounds have a finite log-probability.
    """

    def __init__(self, shift: Array, scale: Array):
        super().__init__(event_ndims_in=0)
        self.shift = shift
        self.scale = scale

    def _broadcast(self, x):
        return jnp.broadcast_to(self.shift, x.shape), jnp.broadcast_to(
            self.scale, x.shape
        )

    def forward_log_det_jacobian(self, x):
        _, scale = self._broadcast(x)
        return jnp.log(scale) + 2 * (jnp.log(2.0) - x - jax.nn.softplus(-2 * x))

    def forward_and_log_det(self, x):
        shift, scale = self._broadcast(x)
        bound = 1 - jnp.finfo(x.dtype).epsneg
        y = shift + scale * jnp.clip(jnp.tanh(x), -bound, bound)
        return y, self.forward_log_det_jacobian(x)

    def inverse_and_log_det(self, y):
        shift, scale = self._broadcast(y)
        bound = 1 - jnp.finfo(y.dtype).epsneg
        x = jnp.arctanh(jnp.clip((y - shift) / scale, -bound, bound))
        return x, -self.forward_log_det_jacobian(x)


class _SquashedNormal(distrax.Transformed):
    """A diagonal normal pushed through `_ScaledTanh` (the event is the last axis).

    `sample_and_log_prob` takes the log-probability from the pre-squash sample
    `u` (`log N(u) - log|dy/du|`), never from `atanh` of the squashed action, so it
    stays exact and differentiable when `tanh(u)` rounds to ±1."""

    def __init__(
        self, loc: Array, scale_diag: Array, shift: Array, scale: Array
    ) -> None:
        super().__init__(
            _MultivariateNormalDiag(loc, scale_diag),
            distrax.Block(_ScaledTanh(shift, scale), ndims=1),
        )

    def _sample_n_and_log_prob(self, key, n):
        u = self.distribution.sample(seed=key, sample_shape=n)
        log_prob_u = jax.vmap(self.distribution.log_prob)(u)
        y, log_det = jax.vmap(self.bijector.forward_and_log_det)(u)
        return y, log_prob_u - log_det


class Gaussian(eqx.Module):
    """A diagonal Gaussian policy over `action_dim` unbounded actions.

    Maps torso outputs `(time, in_features)` to a `distrax.MultivariateNormalDiag`
    with batch shape `(time,)` and event shape `(action_dim,)`. The mean is a
    `Linear` layer (orthogonal, output scale `scale`, so the initial means are
    small); the standard deviation `exp(log_std)` is a learned, state-independent
    parameter initialised to 1 (`log_std = 0`), as in PPO for continuous control.

    **Arguments:** `in_features`; `action_dim`; `scale` (0.01), the orthogonal
    scale of the mean layer; `key` (keyword only).
    """

    mean: Linear
    log_std: Float[Array, " action_dim"]
    action_dim: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        scale: float = 0.01,
        key: PRNGKeyArray,
    ):
        if action_dim <= 0:
            raise ValueError(
                f"Gaussian: `action_dim` must be positive; got {action_dim}."
            )
        self.mean = Linear(in_features, action_dim, scale=scale, key=key)
        self.log_std = jnp.zeros((action_dim,))
        self.action_dim = action_dim

    def __call__(
        self, x: Float[Array, "time in_features"]
    ) -> distrax.MultivariateNormalDiag:
        mean = jax.vmap(self.mean)(x)
        std = jnp.broadcast_to(jnp.exp(self.log_std), mean.shape)
        return _MultivariateNormalDiag(mean, std)


def _bound(name: str, value, action_dim: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in np.ravel(np.asarray(value, np.float64)))
    if len(values) == 1:
        values = values * action_dim
    if len(values) != action_dim:
        raise ValueError(
            f"SquashedGaussian: `{name}` must be a scalar or have `action_dim` = "
            f"{action_dim} entries; got {len(values)}."
        )
    return values


class SquashedGaussian(eqx.Module):
    """A tanh-squashed diagonal Gaussian policy, as in SAC (Haarnoja et al., 2018).

    Maps torso outputs `(time, in_features)` to a distrax `Transformed`
    distribution (batch shape `(time,)`, event shape `(action_dim,)`): a diagonal
    normal with state-dependent mean and log-std (two `Linear` layers; the log-std
    clipped to `[log_std_min, log_std_max]`), pushed through `tanh` and, if bounds
    are given, rescaled from `(-1, 1)` to `(low, high)`. Its log-probability is
    `log N(u; mean, std) - Σ log(1 - tanh(u)^2) - Σ log((high - low) / 2)` with
    `u = atanh(a)`, the change-of-variables correction in a numerically stable
    form; use `dist.sample_and_log_prob(seed=key)` for the log-probability of a
    fresh sample (it is computed from the pre-squash sample and stays finite and
    differentiable when the action saturates). Samples lie strictly inside
    `(-1, 1)` (float32 `tanh` is clipped below ±1), within `[low, high]` with
    bounds; the log-probability of an action on a bound is finite. `entropy()` has
    no closed form and is not available; SAC estimates it as `-log_prob` of a
    sample.

    `head(x, temperature)` scales the standard deviation by `temperature`
    (default 1). `temperature=0` gives the deterministic action `tanh(mean)`
    (rescaled to the bounds), without NaNs, as used for evaluation; the scale is
    floored at `sqrt(tiny)` of the float type (about 1e-19 in float32), so
    log-probabilities stay finite too.

    **Arguments:** `in_features`; `action_dim`; `log_std_min` (-10; the SAC
    reference code uses -20, but a float32 standard deviation of `e^-20 ≈ 2e-9` is
    below the resolution of a mean of order 1, so sampled actions round to the mean
    and their log-probabilities are wrong; `e^-10 ≈ 5e-5` is resolvable);
    `log_std_max` (2); `low`, `high` (None: actions in `(-1, 1)`; else scalars or
    `action_dim` values with `low < high`); `scale` (0.01), the orthogonal scale of
    both output layers, so the initial policy is close to `tanh(N(0, 1))`; `key`
    (keyword only).
    """

    mean: Linear
    log_std: Linear
    action_dim: int = eqx.field(static=True)
    log_std_min: float = eqx.field(static=True)
    log_std_max: float = eqx.field(static=True)
    low: tuple[float, ...] | None = eqx.field(static=True)
    high: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        action_dim: int,
        log_std_min: float = -10.0,
        log_std_max: float = 2.0,
        low: float | Sequence[float] | None = None,
        high: float | Sequence[float] | None = None,
        scale: float = 0.01,
        key: PRNGKeyArray,
    ):
        if action_dim <= 0:
            raise ValueError(
                f"SquashedGaussian: `action_dim` must be positive; got {action_dim}."
            )
        if not log_std_min < log_std_max:
            raise ValueError(
                "SquashedGaussian: expected `log_std_min < log_std_max`; got "
                f"{log_std_min} and {log_std_max}."
            )
        if (low is None) != (high is None):
            raise ValueError(
                "SquashedGaussian: give both `low` and `high`, or neither."
            )
        if low is not None:
            low = _bound("low", low, action_dim)
            high = _bound("high", high, action_dim)
            if not all(lo < hi for lo, hi in zip(low, high)):
                raise ValueError(
                    f"SquashedGaussian: expected `low < high`; got {low} and {high}."
                )
        k1, k2 = jr.split(key)
        self.mean = Linear(in_features, action_dim, scale=scale, key=k1)
        self.log_std = Linear(in_features, action_dim, scale=scale, key=k2)
        self.action_dim = action_dim
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max
        self.low = low
        self.high = high

    def __call__(
        self,
        x: Float[Array, "time in_features"],
        temperature: float | Float[Array, ""] = 1.0,
    ) -> distrax.Transformed:
        mean = jax.vmap(self.mean)(x)
        log_std = jnp.clip(
            jax.vmap(self.log_std)(x), self.log_std_min, self.log_std_max
        )
        floor = jnp.sqrt(jnp.finfo(mean.dtype).tiny)
        std = jnp.maximum(jnp.exp(log_std) * temperature, floor)
        if self.low is None:
            shift = jnp.zeros((self.action_dim,))
            half_width = jnp.ones((self.action_dim,))
        else:
            low, high = jnp.array(self.low), jnp.array(self.high)
            shift, half_width = (high + low) / 2, (high - low) / 2
        return _SquashedNormal(mean, std, shift, half_width)
