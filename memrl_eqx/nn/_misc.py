"""Small helpers shared by the sequence models."""

import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool

from .._custom_types import Carry


def reset_carry(reset: Bool[Array, ""], initial: Carry, carry: Carry) -> Carry:
    """Return `initial` where `reset` is set, else `carry` (leaf by leaf)."""
    return jtu.tree_map(lambda i, c: jnp.where(reset, i, c), initial, carry)


def check_sequence(name: str, xs: Array, resets: Array, in_features: int) -> None:
    """Raise a `ValueError` naming `name` if `xs`/`resets` do not fit a model.

    Runs at trace time (shapes are static), so a wrong input fails before any
    computation.
    """
    if xs.ndim != 2:
        raise ValueError(
            f"{name}: `xs` must have shape (time, {in_features}) for one sequence; "
            f"got shape {xs.shape}. Batch with jax.vmap / eqx.filter_vmap."
        )
    if xs.shape[-1] != in_features:
        raise ValueError(
            f"{name}: `xs` has {xs.shape[-1]} features but the model was built "
            f"with in_features={in_features}."
        )
    if resets.shape != xs.shape[:1]:
        raise ValueError(
            f"{name}: `resets` must have shape ({xs.shape[0]},) to match `xs`; "
            f"got shape {resets.shape}."
        )
    if resets.dtype != jnp.bool_:
        raise ValueError(f"{name}: `resets` must be boolean; got dtype {resets.dtype}.")


def default_floating_dtype():
    """float64 when x64 is enabled, else float32 (as equinox does)."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32  # pyright: ignore


def infer_features(name: str, module, features: int | None) -> int:
    """`features` if given, else the width of `module`'s inputs.

    The width is read from an integer `in_features` attribute, which every cell,
    `RNN`, `Memoroid`, attention layer, `Linear`, `MLP`, `FFN`, `GLU` and every
    block wrapping one of them has. Raises a `ValueError` naming `name` if it
    cannot be inferred.
    """
    if features is not None:
        return features
    in_features = getattr(module, "in_features", None)
    if isinstance(in_features, int):
        return in_features
    raise ValueError(
        f"{name}: cannot infer the width from a {type(module).__name__}; pass "
        "`features=` (the width of the inputs)."
    )


def check_keeps_shape(name: str, xs: Array, ys: Array | jax.ShapeDtypeStruct) -> None:
    """Raise a `ValueError` naming `name` unless the wrapped model's outputs `ys`
    have the shape of its inputs `xs` (as a skip connection or a repeated layer
    needs). Runs at trace time."""
    if ys.shape != xs.shape:
        raise ValueError(
            f"{name}: the wrapped model must keep the shape of its inputs; it maps "
            f"{xs.shape} to {ys.shape}."
        )


def chunk_size_for(length: int) -> int:
    """The default chunk of `remat_scan`: the power of two nearest $\\sqrt{T}$, at
    least 8 (balances the carries kept at chunk boundaries against the steps
    rematerialised inside one chunk)."""
    size = 8
    while size * size * 2 < length:
        size *= 2
    return size


def pad_time(tree, pad: int, value=None):
    """Append `pad` copies of `value` (a tree like one time step; zeros if None)
    along the leading (time) axis of every leaf of `tree`."""
    if value is None:
        value = jtu.tree_map(lambda t: jnp.zeros(t.shape[1:], t.dtype), tree)
    return jtu.tree_map(
        lambda t, v: jnp.concatenate([t, jnp.broadcast_to(v, (pad,) + t.shape[1:])]),
        tree,
        value,
    )


def split_time(tree, num: int):
    """Reshape the leading axis of every leaf into `(num, chunk)`."""
    return jtu.tree_map(lambda t: t.reshape((num, -1) + t.shape[1:]), tree)


def merge_time(tree, length: int):
    """Undo `split_time` and drop the padding: the first `length` steps."""
    return jtu.tree_map(lambda t: t.reshape((-1,) + t.shape[2:])[:length], tree)


def remat_scan(step, carry, xs, chunk_size: int | None = None):
    """`lax.scan(step, carry, xs)` whose backward pass keeps only the carries at
    chunk boundaries and recomputes each chunk's steps (`jax.checkpoint`):
    memory $O(T/C + C)$ steps instead of $T$, for one extra forward pass.

    `xs` is padded to whole chunks; padding steps leave the carry unchanged and
    their outputs are dropped, so the result equals `lax.scan`'s. A sequence of
    at most one chunk is a plain `lax.scan`.
    """
    length = jtu.tree_leaves(xs)[0].shape[0]
    size = chunk_size or chunk_size_for(length)
    if length <= size:
        return lax.scan(step, carry, xs)
    num = -(-length // size)
    pad = num * size - length
    valid = jnp.arange(num * size) < length

    def masked(carry, inputs):
        x, keep = inputs
        new, y = step(carry, x)
        return reset_carry(keep, new, carry), y

    chunks = split_time((pad_time(xs, pad), valid), num)
    chunk = jax.checkpoint(lambda carry, xs: lax.scan(masked, carry, xs))
    carry, ys = lax.scan(chunk, carry, chunks)
    return carry, merge_time(ys, length)
