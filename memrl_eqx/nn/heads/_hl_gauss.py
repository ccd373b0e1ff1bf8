"""`HLGaussVNetwork`, `hl_gauss` and `two_hot`: a state value learned by
classification over a histogram of returns (Imani and White, 2018, "Improving
Regression Performance with Distributional Losses"; Farebrother et al., 2024,
"Stop Regressing: Training Value Functions via Classification for Scalable Deep
RL")."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._linear import Linear


def two_hot(
    values: Float[Array, "*batch"], support: Float[Array, " num_bins"]
) -> Float[Array, "*batch num_bins"]:
    """The two-hot encoding of scalars on an evenly spaced, increasing `support`.

    Each value is clipped to `[support[0], support[-1]]` and its unit mass split
    between the two atoms around it in proportion to closeness (a value on an atom
    is one-hot there), so `Σ_i p_i support_i` equals the clipped value. Any
    leading shape `*batch` is accepted.

    **Arguments:** `values`, the scalars, shape `*batch`; `support`, the atoms,
    shape `(num_bins,)` with `num_bins >= 2`.

    **Returns:** the probabilities, shape `(*batch, num_bins)`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from memrl_eqx.nn.heads import two_hot

    support = jnp.linspace(0.0, 4.0, 5)  # atoms 0, 1, 2, 3, 4
    probs = two_hot(jnp.array([2.25, 9.0]), support)
    assert jnp.allclose(probs[0], jnp.array([0, 0, 0.75, 0.25, 0]))
    assert jnp.allclose(probs[1], jnp.array([0, 0, 0, 0, 1]))  # clipped to 4
    ```
    """
    if support.shape[0] < 2:
        raise ValueError(
            f"two_hot: `support` needs at least 2 atoms; got {support.shape[0]}."
        )
    delta = (support[-1] - support[0]) / (support.shape[0] - 1)
    values = jnp.clip(values, support[0], support[-1])
    atoms = jnp.broadcast_to(support, values.shape + support.shape)
    return jnp.clip(1 - jnp.abs(values[..., None] - atoms) / delta, 0, 1)


def hl_gauss(
    values: Float[Array, "*batch"],
    edges: Float[Array, " num_edges"],
    sigma: float | Float[Array, ""],
) -> Float[Array, "*batch num_edges-1"]:
    """The HL-Gauss histogram target of scalars (Imani and White, 2018).

    Each value `y` is clipped to `[edges[0], edges[-1]]`; the target probability of
    bin `i` is the mass of `N(y, sigma²)` on `[edges[i], edges[i+1]]`,
    `Φ((edges[i+1] - y) / sigma) - Φ((edges[i] - y) / sigma)`, renormalised by the
    mass on `[edges[0], edges[-1]]` so that the bins sum to one. `edges` must be
    increasing; `sigma > 0` (Farebrother et al. 2024 recommend 0.75 bin widths).
    Any leading shape `*batch` is accepted.

    **Arguments:** `values`, the scalars, shape `*batch`; `edges`, the bins'
    edges, shape `(num_bins + 1,)`; `sigma`, the standard deviation of the
    Gaussian, a float or a JAX scalar.

    **Returns:** the probabilities, shape `(*batch, num_bins)`, summing to one.
    """
    if isinstance(sigma, (int, float)) and not sigma > 0:
        raise ValueError(f"hl_gauss: `sigma` must be positive; got {sigma}.")
    values = jnp.clip(values, edges[0], edges[-1])
    bounds = jnp.broadcast_to(edges, values.shape + edges.shape)
    cdf = jax.scipy.special.ndtr((bounds - values[..., None]) / sigma)
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1])


class HLGaussVNetwork(eqx.Module):
    """A state value learned as a histogram: `(time, in_features) -> (time,
    num_bins)` logits over `num_bins` equal bins that split `[v_min, v_max]`.

    The value-head interface (shared with `VNetwork`):

    - `out = head(x)`: the logits;
    - `head.value(out)`: `Σ_i softmax(out)_i c_i`, `c` the bin centres (`support`);
    - `head.loss(out, targets)`: the cross-entropy between `target_probs(targets)`
      and `softmax(out)`, per step.

    `head.target_probs(targets)` is the HL-Gauss histogram of the scalar targets
    (`hl_gauss` with the head's `edges` and `sigma`), or with `sigma=0` the
    `two_hot` encoding on the bin centres (targets then clipped to
    `[c_0, c_last]`). `value`, `target_probs` and `loss` accept any leading shape
    of targets (`(time,)`, `(batch, time)`, ...).

    **Arguments:** `in_features`; `num_bins` (101); `v_min` (-10.0); `v_max`
    (10.0); `sigma` (None: 0.75 bin widths, the ratio Farebrother et al. 2024 found
    best; 0: two-hot targets); `scale` (1.0), the orthogonal scale of the output
    layer; `key` (keyword only).
    """

    linear: Linear
    num_bins: int = eqx.field(static=True)
    v_min: float = eqx.field(static=True)
    v_max: float = eqx.field(static=True)
    sigma: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        num_bins: int = 101,
        v_min: float = -10.0,
        v_max: float = 10.0,
        sigma: float | None = None,
        scale: float = 1.0,
        key: PRNGKeyArray,
    ):
        if num_bins < 2:
            raise ValueError(
                f"HLGaussVNetwork: `num_bins` must be at least 2; got {num_bins}."
            )
        if not v_min < v_max:
            raise ValueError(
                f"HLGaussVNetwork: expected `v_min < v_max`; got {v_min} and {v_max}."
            )
        if sigma is None:
            sigma = 0.75 * (v_max - v_min) / num_bins
        if sigma < 0:
            raise ValueError(
                f"HLGaussVNetwork: `sigma` must be non-negative (0 for two-hot "
                f"targets) or None; got {sigma}."
            )
        self.linear = Linear(in_features, num_bins, scale=scale, key=key)
        self.num_bins = num_bins
        self.v_min = float(v_min)
        self.v_max = float(v_max)
        self.sigma = float(sigma)

    @property
    def edges(self) -> Float[Array, " num_bins_plus_one"]:
        """The `num_bins + 1` bin edges, `linspace(v_min, v_max, num_bins + 1)`."""
        return jnp.linspace(self.v_min, self.v_max, self.num_bins + 1)

    @property
    def support(self) -> Float[Array, " num_bins"]:
        """The bin centres."""
        edges = self.edges
        return (edges[:-1] + edges[1:]) / 2

    def __call__(
        self, x: Float[Array, "time in_features"]
    ) -> Float[Array, "time bins"]:
        return jax.vmap(self.linear)(x)

    def value(self, out: Float[Array, "*batch bins"]) -> Float[Array, "*batch"]:
        """The expected value `Σ_i softmax(out)_i c_i`."""
        probs = jax.nn.softmax(out, axis=-1)
        return jnp.sum(probs * jnp.broadcast_to(self.support, probs.shape), axis=-1)

    def target_probs(
        self, targets: Float[Array, "*batch"]
    ) -> Float[Array, "*batch bins"]:
        """The histogram that the loss fits to scalar targets."""
        if self.sigma == 0:
            return two_hot(targets, self.support)
        return hl_gauss(targets, self.edges, self.sigma)

    def loss(
        self, out: Float[Array, "*batch bins"], targets: Float[Array, "*batch"]
    ) -> Float[Array, "*batch"]:
        """Cross-entropy `-Σ_i target_probs(targets)_i log softmax(out)_i`, per step
        (targets are not differentiated)."""
        probs = jax.lax.stop_gradient(self.target_probs(targets))
        return -jnp.sum(probs * jax.nn.log_softmax(out, axis=-1), axis=-1)
