"""`SegmentRecurrence`: Transformer-XL segment memory around a `SelfAttention`."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._attention import AttentionCarry, SelfAttention, slide
from ._misc import check_sequence
from ._sequence_model import AbstractSequenceModel


class SegmentRecurrenceCarry(NamedTuple):
    """The carry of a `SegmentRecurrence`; all zeros (nothing valid) at the start.

    **Fields:** `memory`, `(memory_length, features)`; `valid`,
    `(memory_length,)`; `attention`, the attention's
    [`memrl_eqx.nn.AttentionCarry`][] (see each field).
    """

    memory: Float[Array, "memory_length features"]
    """The inputs of the last `memory_length` steps, oldest first (zeros in
    invalid slots)."""
    valid: Float[Array, " memory_length"]
    """1.0 where the slot holds a step of the episode in progress, else 0.0 (a
    float like every carry leaf of the package; read as `valid > 0.5`)."""
    attention: AttentionCarry
    """The wrapped attention's own carry (its key/value cache)."""


class SegmentRecurrence(AbstractSequenceModel):
    """Transformer-XL segment-level recurrence (Dai et al. 2019) around a
    `SelfAttention`.

    The memory holds the **inputs** of the last `memory_length` steps (the hidden
    states entering this layer, as Transformer-XL caches the previous layer's
    states). Each call hands it to the attention under `jax.lax.stop_gradient`,
    and the attention recomputes the memory's keys and values with its current
    parameters: no gradient reaches the memory contents (nor, through the carry,
    the previous call's inputs), while the key and value projections get
    gradients through the memory keys, and keys computed by stale parameters are
    never reused. After the call the chunk's inputs are appended, keeping the
    last `memory_length`; steps before the latest reset are cleared.

    **Memory and cache.** With a memory, the attention's window is the previous
    `min(context_length, memory_length)` steps of the episode (plus the step
    itself), and every key before the chunk comes from the memory; the
    attention's own cache is not read (it is still kept up to date in the
    carry). One source per past step makes chunking exact for every split and
    any `memory_length` and `context_length`: a query sees the same steps, with
    the same keys, however the sequence is cut. Memory slots older than
    `context_length` are never attended to, so `memory_length > context_length`
    only costs memory.

    **Carry** (`SegmentRecurrenceCarry`): `(memory (memory_length, features),
    valid (memory_length,), attention carry)`.

    **Arguments:** `module` (a `SelfAttention`, positional), `memory_length`
    (keyword, >= 1), `features` (keyword: the width of the inputs, which must be
    the attention's `in_features`; the default).

    **Example:** a GTrXL-style attention block (Parisotto et al. 2020).

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import (
        ALiBi, PreNorm, Residual, SegmentRecurrence, SelfAttention
    )

    attention = SelfAttention(
        in_features=64, features=64, num_heads=4, context_length=64,
        positional_embedding=ALiBi(4), key=jax.random.key(0),
    )
    block = Residual(PreNorm(
        SegmentRecurrence(attention, memory_length=64, features=64), features=64
    ))
    carry, ys = block(block.init_carry(), jnp.ones((10, 64)), jnp.zeros(10, bool))
    assert ys.shape == (10, 64)
    ```
    """

    module: SelfAttention
    memory_length: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(
        self,
        module: AbstractSequenceModel,
        *,
        memory_length: int,
        features: int | None = None,
    ):
        if not isinstance(module, SelfAttention):
            raise ValueError(
                "SegmentRecurrence: `module` must be a SelfAttention (it is the "
                f"only model that attends over a memory); got {type(module).__name__}."
            )
        if not isinstance(memory_length, int) or memory_length < 1:
            raise ValueError(
                "SegmentRecurrence: `memory_length` must be an int >= 1; "
                f"got {memory_length}."
            )
        if features is None:
            features = module.in_features
        if features != module.in_features:
            raise ValueError(
                f"SegmentRecurrence: `features` ({features}) must equal the "
                f"attention's in_features ({module.in_features}): the memory holds "
                "the attention's inputs."
            )
        self.module = module
        self.memory_length = memory_length
        self.features = features

    @property
    def in_features(self) -> int:
        """The width of the inputs and outputs."""
        return self.features

    def init_carry(self) -> SegmentRecurrenceCarry:
        dtype = self.module.weight_k.dtype
        return SegmentRecurrenceCarry(
            memory=jnp.zeros((self.memory_length, self.features), dtype),
            valid=jnp.zeros((self.memory_length,), dtype),
            attention=self.module.init_carry(),
        )

    @jax.named_scope("memrl_eqx.nn.SegmentRecurrence")
    def __call__(
        self,
        carry: SegmentRecurrenceCarry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[SegmentRecurrenceCarry, Float[Array, "time out_features"]]:
        check_sequence("SegmentRecurrence", xs, resets, self.features)
        valid = carry.valid > 0.5
        memory = (lax.stop_gradient(carry.memory), valid)
        attention, ys = self.module(carry.attention, xs, resets, memory=memory)
        rows = xs.astype(carry.memory.dtype)
        new_memory, new_valid = slide(carry.memory, valid, rows, resets)
        new_carry = SegmentRecurrenceCarry(
            memory=new_memory,
            valid=new_valid.astype(new_memory.dtype),
            attention=attention,
        )
        return new_carry, ys
