"""`SelfAttention`: causal multi-head attention with a key/value cache carry."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._misc import check_sequence, default_floating_dtype
from ._positional import AbstractPositionalEmbedding, steps_since_start
from ._sequence_model import AbstractSequenceModel


class AttentionCarry(NamedTuple):
    """The key/value cache of a `SelfAttention`: its last `context_length` steps,
    oldest first. `init_carry()` is all zeros (every slot invalid).

    **Fields:** `keys` and `values`, each `(context_length, num_heads,
    head_dim)`; `valid` and `positions`, each `(context_length,)` (see each
    field).
    """

    keys: Float[Array, "context_length num_heads head_dim"]
    """Keys as projected, *before* any positional embedding (which is applied at
    use, by position in the window)."""
    values: Float[Array, "context_length num_heads head_dim"]
    valid: Float[Array, " context_length"]
    """1.0 where the slot holds a step of the episode in progress, else 0.0 (a
    float, as every carry leaf of the package, read as `valid > 0.5`). Invalid
    slots hold zeros."""
    positions: Float[Array, " context_length"]
    """Each slot's step count since its episode start (integer values; 0 in
    invalid slots); continued by the next call."""


def episode_ids(
    prior_valid: Bool[Array, " prior"], resets: Bool[Array, " time"]
) -> tuple[Int[Array, " prior_time"], Int[Array, " time"]]:
    """Episode labels of `[prior; chunk]` steps and of the chunk's steps.

    Chunk step `t` is labelled by the number of resets at or before it; a prior
    (carried) step by 0 if valid (it belongs to the episode in progress when the
    chunk starts), else -1, which no chunk step has. Two steps are in the same
    episode iff their labels are equal.
    """
    chunk = jnp.cumsum(resets.astype(jnp.int32))
    prior = jnp.where(prior_valid, 0, -1).astype(jnp.int32)
    return jnp.concatenate([prior, chunk]), chunk


def slide(
    prior_rows: Float[Array, "prior ..."],
    prior_valid: Bool[Array, " prior"],
    rows: Float[Array, "time ..."],
    resets: Bool[Array, " time"],
) -> tuple[Float[Array, "prior ..."], Bool[Array, " prior"]]:
    """The last `prior` rows of `[prior_rows; rows]` and their validity.

    A row is valid iff it belongs to the episode of the chunk's last step (so
    everything before the latest reset is cleared); invalid rows are zeroed.
    """
    n = prior_rows.shape[0]
    labels, chunk = episode_ids(prior_valid, resets)
    keep = (labels == chunk[-1])[-n:]
    joined = jnp.concatenate([prior_rows, rows])[-n:]
    mask = keep.reshape(keep.shape + (1,) * (joined.ndim - 1))
    return jnp.where(mask, joined, jnp.zeros_like(joined)), keep


class SelfAttention(AbstractSequenceModel):
    """Causal multi-head self-attention over a sliding window, with a key/value
    cache as its carry; a sequence model, usable directly as a torso.

    **Per step**, with $q_t, k_t, v_t = W_{q,k,v} x_t + b_{q,k,v}$ split into
    `num_heads` heads of size `head_dim`: each head's output is
    $o_t = \\sum_s \\mathrm{softmax}_s(q_t \\cdot k_s / \\sqrt{d} + b_{ts})\\, v_s$
    over the keys $s$ of step $t$ itself and the previous `context_length` steps
    **of the same episode** (a window of `context_length + 1` keys, never across
    a reset); $b$ is the positional embedding's bias (`ALiBi`) or 0, and `RoPE`
    rotates $q$ and $k$. The heads are concatenated and projected to `features`:
    $y_t = W_o o_t + b_o$.

    **Carry** (`AttentionCarry`): the keys and values of the last
    `context_length` steps, `(context_length, num_heads, head_dim)`, a validity
    flag per slot and each slot's step count in its episode. A call attends over
    `[cache; chunk]` with the window and episode mask (masked keys get exactly
    zero weight and zero gradient), and returns the last `context_length` keys and
    values of `[cache; chunk]`, valid iff they belong to the episode of the
    chunk's last step. Any chunk length works, and running a sequence in chunks
    (or one step at a time) equals running it at once, for every split.

    **Positional embeddings** are applied at use: the cache keeps keys before
    any embedding, and queries and keys get positions along the window
    `[cache; chunk]` (slot `i` at `i`, chunk step `t` at `context_length + t`).
    So every key is rotated exactly once relative to its query (the Flax
    original cached rotated keys and rotated them again), and RoPE's angles stay
    bounded by the window length however long the episode.

    **Memory** (used by `SegmentRecurrence`): `memory=(mem_xs, mem_valid)`, the
    inputs of the `M` steps before the chunk `(M, in_features)` (oldest first)
    and their validity `(M,)`. The keys and values of those steps are then
    recomputed from `mem_xs` with the current parameters and take the cache's
    place: the window becomes the previous `min(context_length, M)` steps of
    the episode, and the cache is not read (it is still updated, so the carry
    stays the cache of the last `context_length` steps).

    **Arguments** (keyword only): `in_features`; `features` (output size);
    `num_heads`; `context_length` (cached steps, >= 1); `head_dim` (default
    `features // num_heads`, which must then divide evenly);
    `positional_embedding` (an `AbstractPositionalEmbedding` such as `RoPE()` or
    `ALiBi(num_heads)`, default none); `key`. Projections are LeCun normal with
    zero biases (as the Flax original).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import RoPE, SelfAttention

    attention = SelfAttention(
        in_features=8, features=32, num_heads=4, context_length=16,
        positional_embedding=RoPE(), key=jax.random.key(0),
    )
    xs, resets = jnp.ones((5, 8)), jnp.zeros(5, bool)
    carry, ys = attention(attention.init_carry(), xs, resets)
    assert ys.shape == (5, 32) and carry.keys.shape == (16, 4, 8)
    ```
    """

    weight_q: Float[Array, "inner in_features"]
    weight_k: Float[Array, "inner in_features"]
    weight_v: Float[Array, "inner in_features"]
    bias_q: Float[Array, " inner"]
    bias_k: Float[Array, " inner"]
    bias_v: Float[Array, " inner"]
    weight_out: Float[Array, "features inner"]
    bias_out: Float[Array, " features"]
    positional_embedding: AbstractPositionalEmbedding | None
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    head_dim: int = eqx.field(static=True)
    context_length: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        num_heads: int,
        context_length: int,
        head_dim: int | None = None,
        positional_embedding: AbstractPositionalEmbedding | None = None,
        key: PRNGKeyArray,
    ):
        for name, value in (
            ("in_features", in_features),
            ("features", features),
            ("num_heads", num_heads),
            ("context_length", context_length),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"SelfAttention: `{name}` must be an int >= 1; got {value}."
                )
        if head_dim is None:
            if features % num_heads != 0:
                raise ValueError(
                    f"SelfAttention: `features` ({features}) must be divisible by "
                    f"`num_heads` ({num_heads}) when `head_dim` is not given."
                )
            head_dim = features // num_heads
        if not isinstance(head_dim, int) or head_dim < 1:
            raise ValueError(
                f"SelfAttention: `head_dim` must be an int >= 1; got {head_dim}."
            )
        if positional_embedding is not None:
            if not isinstance(positional_embedding, AbstractPositionalEmbedding):
                raise ValueError(
                    "SelfAttention: `positional_embedding` must be an "
                    "AbstractPositionalEmbedding (RoPE(), ALiBi(num_heads)) or None; "
                    f"got {type(positional_embedding).__name__}. (An absolute "
                    "LearnablePositionalEmbedding is a layer of its own: put it "
                    "before the attention in a Stack.)"
                )
            positional_embedding.check(num_heads=num_heads, head_dim=head_dim)
        dtype = default_floating_dtype()
        lecun = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)
        k_q, k_k, k_v, k_out = jr.split(key, 4)
        inner = num_heads * head_dim
        self.weight_q = lecun(k_q, (inner, in_features), dtype)
        self.weight_k = lecun(k_k, (inner, in_features), dtype)
        self.weight_v = lecun(k_v, (inner, in_features), dtype)
        self.bias_q = jnp.zeros((inner,), dtype)
        self.bias_k = jnp.zeros((inner,), dtype)
        self.bias_v = jnp.zeros((inner,), dtype)
        self.weight_out = lecun(k_out, (features, inner), dtype)
        self.bias_out = jnp.zeros((features,), dtype)
        self.positional_embedding = positional_embedding
        self.in_features = in_features
        self.features = features
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.context_length = context_length

    def init_carry(self) -> AttentionCarry:
        shape = (self.context_length, self.num_heads, self.head_dim)
        dtype = self.weight_k.dtype
        return AttentionCarry(
            keys=jnp.zeros(shape, dtype),
            values=jnp.zeros(shape, dtype),
            valid=jnp.zeros((self.context_length,), dtype),
            positions=jnp.zeros((self.context_length,), dtype),
        )

    def _project(
        self,
        weight: Float[Array, "inner in_features"],
        bias: Float[Array, " inner"],
        xs: Float[Array, "time in_features"],
    ) -> Float[Array, "time num_heads head_dim"]:
        u = xs @ weight.T + bias[None, :]
        return u.reshape(xs.shape[0], self.num_heads, self.head_dim)

    @jax.named_scope("memrl_eqx.nn.SelfAttention")
    def __call__(
        self,
        carry: AttentionCarry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
        *,
        memory: tuple[Float[Array, "memory in_features"], Bool[Array, " memory"]]
        | None = None,
    ) -> tuple[AttentionCarry, Float[Array, "time features"]]:
        check_sequence("SelfAttention", xs, resets, self.in_features)
        xs = xs.astype(self.weight_q.dtype)
        time = xs.shape[0]
        cache_valid = carry.valid > 0.5
        if memory is None:
            k_chunk = self._project(self.weight_k, self.bias_k, xs)
            v_chunk = self._project(self.weight_v, self.bias_v, xs)
            prior_k, prior_v, prior_valid = carry.keys, carry.values, cache_valid
            window = self.context_length
        else:
            mem_xs, mem_valid = memory
            m = mem_xs.shape[0]
            if mem_xs.shape != (m, self.in_features) or mem_valid.shape != (m,):
                raise ValueError(
                    "SelfAttention: `memory` must be (inputs (M, in_features), "
                    f"valid (M,)) with in_features={self.in_features}; got shapes "
                    f"{mem_xs.shape} and {mem_valid.shape}."
                )
            both = jnp.concatenate([mem_xs.astype(xs.dtype), xs])
            k_both = self._project(self.weight_k, self.bias_k, both)
            v_both = self._project(self.weight_v, self.bias_v, both)
            prior_k, k_chunk = k_both[:m], k_both[m:]
            prior_v, v_chunk = v_both[:m], v_both[m:]
            prior_valid = mem_valid
            window = min(self.context_length, m)
        prior = prior_k.shape[0]

        q = self._project(self.weight_q, self.bias_q, xs)
        k = jnp.concatenate([prior_k, k_chunk])
        v = jnp.concatenate([prior_v, v_chunk])
        k_positions = jnp.arange(prior + time, dtype=jnp.int32)
        q_positions = k_positions[prior:]
        bias = None
        if self.positional_embedding is not None:
            q, k, bias = self.positional_embedding(q, k, q_positions, k_positions)

        logits = jnp.einsum("thd,shd->hts", q, k) / math.sqrt(self.head_dim)
        if bias is not None:
            logits = logits + bias
        labels, chunk_labels = episode_ids(prior_valid, resets)
        offset = q_positions[:, None] - k_positions[None, :]
        allowed = (offset >= 0) & (offset <= window)
        allowed = allowed & (labels[None, :] == chunk_labels[:, None])
        logits = jnp.where(allowed[None, :, :], logits, -jnp.inf)
        weights = jax.nn.softmax(logits, axis=-1)
        o = jnp.einsum("hts,shd->thd", weights, v).reshape(time, -1)
        ys = o @ self.weight_out.T + self.bias_out[None, :]

        keys, valid = slide(carry.keys, cache_valid, k_chunk, resets)
        values, _ = slide(carry.values, cache_valid, v_chunk, resets)
        last = carry.positions[-1]
        start = jnp.where(cache_valid[-1], jnp.floor(last) + 1, jnp.zeros_like(last))
        positions, _ = slide(
            carry.positions, cache_valid, steps_since_start(start, resets), resets
        )
        new_carry = AttentionCarry(
            keys=keys,
            values=values,
            valid=valid.astype(keys.dtype),
            positions=positions,
        )
        return new_carry, ys
