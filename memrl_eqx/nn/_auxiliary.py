"""Auxiliary losses that a model accounts for in its carry.

Some models come with a loss of their own that an algorithm must add to its
objective (the load-balancing and z-losses of a mixture of experts' router). Such
a model keeps *auxiliary statistics* in its carry: sums over the steps it has
processed, from which the loss is computed. Because they are sums, they chunk
exactly (running `[0:k]` then `[k:T]` adds up to running `[0:T]`) and the
statistics of a batch are the sums over its sequences. An algorithm, knowing
nothing of the model, does

```python
carry = clear_auxiliary(carry)                  # before its training forward pass
new_carry, out = jax.vmap(network)(carry, timesteps)
loss = task_loss(out) + auxiliary_loss(new_carry)
```
"""

import abc

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
from equinox import AbstractVar
from jaxtyping import Array, Float

from .._custom_types import Carry


class AbstractAuxiliaryStatistics(eqx.Module):
    """Additive statistics, kept in a carry, from which an auxiliary loss follows.

    Every array field is a sum over the steps accounted for, so two statistics of
    the same kind add leaf by leaf (`a.add(b)`), and statistics with leading batch
    axes (from a vmapped carry) pool by summing over those axes (`pool()`).

    The statistics are accounting, not memory: a model never resets them at an
    episode start and its outputs never depend on them.

    Subclasses provide:

    - `count`: the number of steps accounted for, a scalar for one sequence; its
      number of dimensions is the number of leading batch axes of every field;
    - `loss()`: the auxiliary loss of one (pooled, unbatched) set of statistics.
    """

    count: AbstractVar[Float[Array, "*batch"]]

    @abc.abstractmethod
    def loss(self) -> Float[Array, ""]:
        """The auxiliary loss of unbatched statistics (call `pool()` first)."""

    def pool(self) -> "AbstractAuxiliaryStatistics":
        """The statistics summed over any leading batch axes (those of `count`)."""
        axes = tuple(range(jnp.ndim(self.count)))
        return jtu.tree_map(lambda a: jnp.sum(a, axis=axes), self)

    def add(
        self, other: "AbstractAuxiliaryStatistics"
    ) -> "AbstractAuxiliaryStatistics":
        """Leafwise sum with statistics of the same kind and shapes."""
        return jtu.tree_map(jnp.add, self, other)

    def clear(self) -> "AbstractAuxiliaryStatistics":
        """Statistics of the same shapes with every sum set to zero."""
        return jtu.tree_map(jnp.zeros_like, self)


def _is_statistics(x) -> bool:
    return isinstance(x, AbstractAuxiliaryStatistics)


def auxiliary_statistics(carry: Carry) -> list[AbstractAuxiliaryStatistics]:
    """Every `AbstractAuxiliaryStatistics` found anywhere in `carry` (as stored:
    with the carry's batch axes, if any)."""
    leaves = jtu.tree_leaves(carry, is_leaf=_is_statistics)
    return [leaf for leaf in leaves if _is_statistics(leaf)]


def auxiliary_loss(carry: Carry) -> Float[Array, ""]:
    """The total auxiliary loss of the statistics in `carry`.

    Each statistics leaf is pooled over its leading batch axes (so a vmapped carry
    gives the loss of the whole batch's statistics, not a mean of per-sequence
    losses) and its `loss()` is added up. A carry without statistics gives `0.0`.
    Gradients flow to the parameters that produced the statistics.
    """
    total = jnp.zeros((), jnp.float32)
    for statistics in auxiliary_statistics(carry):
        total = total + statistics.pool().loss().astype(jnp.float32)
    return total


def clear_auxiliary(carry: Carry) -> Carry:
    """`carry` with every auxiliary statistic set to zero (shapes, batch axes and
    everything else unchanged)."""
    return jtu.tree_map(
        lambda x: x.clear() if _is_statistics(x) else x, carry, is_leaf=_is_statistics
    )
