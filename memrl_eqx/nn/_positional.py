"""Positional embeddings: `RoPE` and `ALiBi` for `SelfAttention`, and the
absolute `LearnablePositionalEmbedding` (a sequence model of its own)."""

import abc
import math

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._misc import check_sequence, default_floating_dtype
from ._sequence_model import AbstractSequenceModel


def steps_since_start(
    start: Float[Array, ""], resets: Bool[Array, " time"]
) -> Float[Array, " time"]:
    """The position of each step in its episode (0 at the episode's first step).

    `start` is the position of the chunk's first step if no reset precedes it
    (the count of steps already taken in the episode in progress); after a reset
    at `r`, step `t` has position `t - r`. Values are integers stored as floats.
    """
    t = jnp.arange(resets.shape[0], dtype=jnp.int32)
    last_reset = lax.cummax(jnp.where(resets, t, -1), axis=0)
    since_reset = (t - last_reset).astype(start.dtype)
    continued = start + t.astype(start.dtype)
    return jnp.where(last_reset >= 0, since_reset, continued)


class AbstractPositionalEmbedding(eqx.Module):
    """A relative positional embedding applied inside `SelfAttention`.

    `q, k, bias = embedding(q, k, q_positions, k_positions)` receives the
    per-head queries `(q_time, num_heads, head_dim)` and keys
    `(k_time, num_heads, head_dim)` with the integer positions of their steps,
    and returns the (possibly transformed) queries and keys and an additive bias
    of the attention logits, shape `(num_heads, q_time, k_time)`, or `None`.

    `SelfAttention` passes positions relative to its window (its key/value cache
    and chunk laid out on one time axis), so only differences of positions carry
    meaning: an embedding must depend on `q_position - k_position` only, which
    RoPE and ALiBi do.
    """

    def check(self, *, num_heads: int, head_dim: int) -> None:
        """Raise a `ValueError` if the embedding cannot serve an attention with
        these sizes (called by `SelfAttention` at construction)."""

    @abc.abstractmethod
    def __call__(
        self,
        q: Float[Array, "q_time num_heads head_dim"],
        k: Float[Array, "k_time num_heads head_dim"],
        q_positions: Int[Array, " q_time"],
        k_positions: Int[Array, " k_time"],
    ) -> tuple[
        Float[Array, "q_time num_heads head_dim"],
        Float[Array, "k_time num_heads head_dim"],
        Float[Array, "num_heads q_time k_time"] | None,
    ]:
        """Return `(q, k, bias)`; see the class docstring."""


class RoPE(AbstractPositionalEmbedding):
    """Rotary position embedding (Su et al. 2021, "RoFormer").

    Each pair of features $(x_{2i}, x_{2i+1})$, $i = 0, \\dots, d/2 - 1$, of a
    query or key at position $p$ is rotated by the angle $p\\,\\theta_i$ with
    $\\theta_i = \\text{base}^{-2i/d}$ ($d$ = `head_dim`, which must be even).
    Rotations preserve norms, and $R_p q \\cdot R_s k = q \\cdot R_{s-p} k$, so the
    attention logits depend only on the offset $s - p$. No bias, no parameters.

    **Arguments:** `base` (keyword, default `10000.0`, > 1).
    """

    base: float = eqx.field(static=True)

    def __init__(self, *, base: float = 10000.0):
        if not base > 1:
            raise ValueError(f"RoPE: `base` must be > 1; got {base}.")
        self.base = float(base)

    def check(self, *, num_heads: int, head_dim: int) -> None:
        if head_dim % 2 != 0:
            raise ValueError(
                "RoPE rotates pairs of features, so the attention's `head_dim` must "
                f"be even; got head_dim={head_dim}."
            )

    def rotate(
        self, x: Float[Array, "time num_heads head_dim"], positions: Int[Array, " time"]
    ) -> Float[Array, "time num_heads head_dim"]:
        """Rotate every step of `x` by its position."""
        d = x.shape[-1]
        self.check(num_heads=x.shape[1], head_dim=d)
        frequencies = self.base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        angles = (
            positions.astype(x.dtype)[:, None]
            * jnp.asarray(frequencies, x.dtype)[None, :]
        )
        cos = jnp.cos(angles)[:, None, :]  # (time, 1, d/2)
        sin = jnp.sin(angles)[:, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        rotated = jnp.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
        return rotated.reshape(x.shape)

    def __call__(
        self,
        q: Float[Array, "q_time num_heads head_dim"],
        k: Float[Array, "k_time num_heads head_dim"],
        q_positions: Int[Array, " q_time"],
        k_positions: Int[Array, " k_time"],
    ) -> tuple[
        Float[Array, "q_time num_heads head_dim"],
        Float[Array, "k_time num_heads head_dim"],
        None,
    ]:
        return self.rotate(q, q_positions), self.rotate(k, k_positions), None


def alibi_slopes(num_heads: int) -> np.ndarray:
    """The ALiBi slopes of Press et al. (2022), one per head (float64).

    For $H$ a power of two: $m_h = 2^{-8h/H}$, $h = 1, \\dots, H$. Otherwise, as
    the paper prescribes: the slopes for $n = 2^{\\lfloor \\log_2 H \\rfloor}$
    heads, followed by the first $H - n$ of every other slope (the 1st, 3rd, ...)
    for $2n$ heads.
    """
    if num_heads < 1:
        raise ValueError(f"ALiBi: `num_heads` must be >= 1; got {num_heads}.")
    n = 2 ** int(math.floor(math.log2(num_heads)))
    base = 2.0 ** (-8.0 * np.arange(1, n + 1) / n)
    odd = np.arange(1, 2 * (num_heads - n), 2)
    extra = 2.0 ** (-8.0 * odd / (2 * n))
    return np.concatenate([base, extra])


class ALiBi(AbstractPositionalEmbedding):
    """Attention with linear biases (Press et al. 2022, "Train Short, Test Long").

    Adds $m_h\\,(s - p)$ to the logit of query position $p$ and key position
    $s \\le p$ in head $h$: a penalty growing linearly with the distance, with the
    paper's geometric slopes `alibi_slopes(num_heads)` ($2^{-8h/H}$ for $H$ a
    power of two, the paper's interpolation otherwise). Queries and keys are
    unchanged; no parameters.

    **Arguments:** `num_heads` (positional or keyword), which must equal the
    attention's.
    """

    num_heads: int = eqx.field(static=True)

    def __init__(self, num_heads: int):
        if not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(
                f"ALiBi: `num_heads` must be an int >= 1; got {num_heads}."
            )
        self.num_heads = num_heads

    @property
    def slopes(self) -> np.ndarray:
        """The per-head slopes, shape `(num_heads,)`."""
        return alibi_slopes(self.num_heads)

    def check(self, *, num_heads: int, head_dim: int) -> None:
        if num_heads != self.num_heads:
            raise ValueError(
                f"ALiBi was built with num_heads={self.num_heads} but the attention "
                f"has num_heads={num_heads}."
            )

    def __call__(
        self,
        q: Float[Array, "q_time num_heads head_dim"],
        k: Float[Array, "k_time num_heads head_dim"],
        q_positions: Int[Array, " q_time"],
        k_positions: Int[Array, " k_time"],
    ) -> tuple[
        Float[Array, "q_time num_heads head_dim"],
        Float[Array, "k_time num_heads head_dim"],
        Float[Array, "num_heads q_time k_time"],
    ]:
        self.check(num_heads=q.shape[1], head_dim=q.shape[2])
        offset = (k_positions[None, :] - q_positions[:, None]).astype(q.dtype)
        slopes = jnp.asarray(self.slopes, q.dtype)
        return q, k, slopes[:, None, None] * offset[None, :, :]


class LearnablePositionalEmbedding(AbstractSequenceModel):
    """Adds a learned embedding of each step's position in its episode:
    $y_t = x_t + E[p_t]$, with $p_t$ the number of steps since the episode start
    (0 at a reset). A sequence model: it is the first layer of a GPT-2 style
    stack, in front of attention layers.

    **Carry:** the position of the next step, a float scalar holding an integer
    (0 for `init_carry()`; float like the other models' carry leaves). Chunking
    holds exactly: the count continues across calls and restarts at resets.

    **Out of range:** a position $\\ge$ `num_embeddings` is an error, raised at
    run time by `eqx.error_if` with a message naming `num_embeddings` (under
    `jit` too): size the table to the longest episode. (A negative count, which
    only a hand-made carry can hold, is treated as 0.)

    **Arguments** (keyword only): `num_embeddings` (the table size, the longest
    episode it can embed), `features` (the width of `xs`, also `in_features`),
    `key`. Embeddings are drawn from $N(0, 0.02^2)$, the GPT initialisation
    (Radford et al. 2018).
    """

    embeddings: Float[Array, "num_embeddings features"]
    num_embeddings: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(self, *, num_embeddings: int, features: int, key: PRNGKeyArray):
        for name, value in (("num_embeddings", num_embeddings), ("features", features)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"LearnablePositionalEmbedding: `{name}` must be an int >= 1; "
                    f"got {value}."
                )
        dtype = default_floating_dtype()
        self.embeddings = 0.02 * jr.normal(key, (num_embeddings, features), dtype)
        self.num_embeddings = num_embeddings
        self.features = features

    @property
    def in_features(self) -> int:
        """The width of the inputs and outputs."""
        return self.features

    def init_carry(self) -> Float[Array, ""]:
        return jnp.zeros((), self.embeddings.dtype)

    @jax.named_scope("memrl_eqx.nn.LearnablePositionalEmbedding")
    def __call__(
        self,
        carry: Float[Array, ""],
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Float[Array, ""], Float[Array, "time in_features"]]:
        check_sequence("LearnablePositionalEmbedding", xs, resets, self.features)
        positions = steps_since_start(jnp.floor(carry), resets)
        index = jnp.maximum(positions, 0).astype(jnp.int32)
        index = eqx.error_if(
            index,
            index >= self.num_embeddings,
            "LearnablePositionalEmbedding: a step's position in its episode "
            f"reached num_embeddings={self.num_embeddings}; build it with a larger "
            "num_embeddings (at least the longest episode).",
        )
        ys = xs + self.embeddings[index].astype(xs.dtype)
        return positions[-1] + 1, ys
