"""`RNN`: a step cell run over a sequence by a sequential scan."""

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float

from .._custom_types import Carry
from ._cell import AbstractCell
from ._misc import check_sequence, remat_scan, reset_carry
from ._sequence_model import AbstractSequenceModel


# Carries larger than this many numbers are rematerialised by chunks.
_REMAT_CARRY_SIZE = 1024


class RNN(AbstractSequenceModel):
    """Runs a step cell over a sequence, resetting the carry at episode starts.

    The input projection of every step is computed at once, outside the scan; only
    the recurrence runs sequentially (`jax.lax.scan`, `unroll` steps per
    iteration). Where `resets[t]` is set, the carry is replaced by
    `cell.init_carry()` before step `t`. A carry of more than 1024 numbers (a
    matrix memory) is kept only at the boundaries of $\\sqrt{T}$-sized chunks in
    the backward pass, which recomputes each chunk (memory $O(T/C + C)$ carries;
    `unroll` then does not apply).

    **Arguments:** `cell`, the step cell ([`memrl_eqx.nn.AbstractCell`][]);
    `unroll` (default 1), the steps per iteration of the scan, a speed knob that
    changes nothing else.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import GRUCell, RNN

    rnn = RNN(GRUCell(in_features=4, features=8, key=jax.random.key(0)))
    xs = jax.random.normal(jax.random.key(1), (5, 4))
    resets = jnp.array([True, False, False, True, False])  # 2 episodes
    carry, ys = rnn(rnn.init_carry(), xs, resets)
    assert ys.shape == (5, 8) and carry.shape == (8,)

    # The second episode does not see the first: run alone, it gives the same.
    _, alone = rnn(rnn.init_carry(), xs[3:], resets[3:])
    assert jnp.allclose(ys[3:], alone, atol=1e-6)

    # A batch of sequences: vmap over carries, inputs and resets.
    carries = jnp.zeros((2, 8))
    _, batch = jax.vmap(rnn)(carries, jnp.stack([xs, xs]), jnp.stack([resets] * 2))
    assert batch.shape == (2, 5, 8)
    ```
    """

    cell: AbstractCell
    unroll: int = eqx.field(static=True, default=1)

    @property
    def in_features(self) -> int:
        """The width of the inputs (the cell's `in_features`)."""
        return self.cell.in_features

    def init_carry(self) -> Carry:
        return self.cell.init_carry()

    @jax.named_scope("memrl_eqx.nn.RNN")
    def __call__(
        self,
        carry: Carry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[Carry, Float[Array, "time out_features"]]:
        check_sequence(type(self.cell).__name__, xs, resets, self.cell.in_features)
        us = jax.vmap(self.cell.input_projection)(xs)
        initial = self.cell.init_carry()

        def step(carry, inputs):
            u, reset = inputs
            return self.cell.recurrence(reset_carry(reset, initial, carry), u)

        # A matrix-sized carry (SHM's, DNC's memory) is what the backward pass
        # would store at every step: keep it at chunk boundaries only, which is
        # also faster (SHM fwd+bwd +25-50% on 2 CPU cores). A vector carry is
        # cheap to store, and rematerialising it costs a GRU ~20%.
        if sum(jnp.size(c) for c in jtu.tree_leaves(carry)) > _REMAT_CARRY_SIZE:
            return remat_scan(step, carry, (us, resets))
        return lax.scan(step, carry, (us, resets), unroll=self.unroll)
