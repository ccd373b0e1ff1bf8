"""Checkpoints of any training state: atomic, and typed PRNG keys included."""

import os
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp


T = TypeVar("T")


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _save_leaf(f, x):
    if _is_key(x):
        x = jax.random.key_data(x)
    eqx.default_serialise_filter_spec(f, x)


def _load_leaf(f, like):
    if _is_key(like):
        data = eqx.default_deserialise_filter_spec(f, jax.random.key_data(like))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(like))
    return eqx.default_deserialise_filter_spec(f, like)


def save_checkpoint(path: str | os.PathLike, tree) -> None:
    """Write `tree` (e.g. a training state) to `path`.

    The file is written beside `path` and then renamed over it, so an
    interruption never leaves a half-written checkpoint at `path`.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    eqx.tree_serialise_leaves(tmp, tree, filter_spec=_save_leaf)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, like: T) -> T:
    """Read a checkpoint written by `save_checkpoint` into the structure of `like`
    (a tree of the same structure, shapes and dtypes, e.g. a fresh `init` state).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        return eqx.tree_deserialise_leaves(path, like, filter_spec=_load_leaf)
    except Exception as error:
        raise ValueError(
            f"checkpoint {path!r} does not match the expected state "
            f"(different configuration, or a corrupt file): {error}"
        ) from error
