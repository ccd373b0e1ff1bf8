"""Stacking modules of one structure along a new leading axis (seeds, sweeps)."""

from collections.abc import Sequence
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp


_M = TypeVar("_M")


def stack(modules: Sequence[_M]) -> _M:
    """Modules (or any PyTrees) of one structure as one whose arrays carry a new
    leading axis, one entry per module; their other leaves are taken from the
    first, and must be equal across modules.

    This is how several seeds' algorithms (each built with its own key, so with its
    own initial networks) become one that `eqx.filter_vmap` trains at once:

    ```python
    algos = [build(jr.key(seed)) for seed in range(3)]
    states = eqx.filter_vmap(lambda a, k: a.init(k))(stack(algos), jr.split(key, 3))
    ```

    **Arguments:**

    - `modules`: a non-empty sequence of PyTrees with the same structure and the
      same array shapes.

    **Returns:** one PyTree of that structure with arrays of shape `(len(modules),
    *shape)`.
    """
    modules = list(modules)
    if not modules:
        raise ValueError("stack: `modules` is empty; give at least one module.")
    arrays, static = eqx.partition(modules[0], eqx.is_array)
    structure = jax.tree.structure(arrays)
    leaves = []
    for i, module in enumerate(modules):
        arrays_i, static_i = eqx.partition(module, eqx.is_array)
        if jax.tree.structure(arrays_i) != structure or not _same(static_i, static):
            raise ValueError(
                f"stack: `modules[{i}]` differs in structure from `modules[0]`; "
                "stack modules built by the same code with different keys."
            )
        leaves.append(jax.tree.leaves(arrays_i))
    stacked = [jnp.stack(xs) for xs in zip(*leaves)]
    return eqx.combine(jax.tree.unflatten(structure, stacked), static)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(eqx.tree_equal(a, b))
    except Exception:  # unorderable or array-valued static leaves
        return jax.tree.structure(a) == jax.tree.structure(b)
