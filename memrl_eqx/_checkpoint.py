"""Checkpoints of any training state: atomic, self-describing and checked.

A checkpoint file is one header line of JSON and then the arrays as
`eqx.tree_serialise_leaves` writes them. The header holds a format tag, the
user's metadata, the payload's length and CRC-32, and the path, shape and dtype
of every array, so that a truncated or corrupt file, or a state of another
structure, is reported by name before anything is loaded.
"""

import io
import json
import os
import zlib
from collections.abc import Mapping
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np


T = TypeVar("T")

_FORMAT = "memrl_eqx checkpoint v1"


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


def _layout(tree) -> list[list]:
    """`[path, shape, dtype]` of every array leaf of `tree` (keys as their data)."""
    layout = []
    for path, leaf in jtu.tree_flatten_with_path(tree)[0]:
        if _is_key(leaf):
            leaf = jax.random.key_data(leaf)
        if isinstance(leaf, jax.Array | np.ndarray | np.generic):
            layout.append([jtu.keystr(path), list(leaf.shape), str(leaf.dtype)])
    return layout


def save_checkpoint(
    path: str | os.PathLike, tree: Any, *, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write `tree` (e.g. a training state) to `path`, with `metadata` (a
    JSON-serialisable mapping, read back by `read_checkpoint_metadata`).

    The file is written beside `path`, flushed to disk and then renamed over
    it, so an interruption never leaves a half-written checkpoint at `path`.

    **Arguments:**

    - `path`: the file to write (a `str` or path-like); an existing file is
      replaced. Its directory must exist.
    - `tree`: any PyTree; its array leaves are saved (PRNG keys as their key
      data), its other leaves and its structure are not: they come from the
      `like` given to [`memrl_eqx.load_checkpoint`][].
    - `metadata`: a JSON-serialisable mapping stored in the header, e.g. the
      configuration of the run (keyword only). Default: empty.

    **Example:**

    ```python
    import os
    import tempfile

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import memrl_eqx

    model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.ckpt")
        memrl_eqx.save_checkpoint(path, model, metadata={"features": 2})
        fresh = eqx.nn.Linear(3, 2, key=jax.random.key(1))  # the structure
        restored = memrl_eqx.load_checkpoint(path, fresh)
        assert memrl_eqx.read_checkpoint_metadata(path) == {"features": 2}
    assert jnp.array_equal(restored.weight, model.weight)
    ```
    """
    path = os.fspath(path)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree, filter_spec=_save_leaf)
    payload = buffer.getvalue()
    header = {
        "format": _FORMAT,
        "metadata": dict(metadata or {}),
        "payload_bytes": len(payload),
        "crc32": zlib.crc32(payload),
        "layout": _layout(tree),
    }
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(json.dumps(header).encode() + b"\n")
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(path: str) -> tuple[dict, bytes]:
    """The header and the verified payload of the checkpoint at `path`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    with open(path, "rb") as f:
        line, payload = f.readline(), f.read()
    try:
        header = json.loads(line)
        assert header["format"] == _FORMAT
    except Exception:
        raise ValueError(
            f"checkpoint {path!r} is not a memrl_eqx checkpoint (its first line is "
            f"not a {_FORMAT!r} header): a corrupt file, or another kind of file"
        ) from None
    if len(payload) != header["payload_bytes"]:
        raise ValueError(
            f"checkpoint {path!r} is truncated: it holds {len(payload)} bytes of "
            f"arrays where its header promises {header['payload_bytes']}"
        )
    if zlib.crc32(payload) != header["crc32"]:
        raise ValueError(
            f"checkpoint {path!r} is corrupt: its arrays fail the CRC-32 check"
        )
    return header, payload


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `metadata` a checkpoint was saved with (after checking the file is
    whole: a missing, truncated or corrupt file raises, naming `path`).

    **Arguments:** `path`, the checkpoint file written by
    [`memrl_eqx.save_checkpoint`][].

    **Returns:** the metadata, a `dict` (empty if none was given).
    """
    header, _ = _read(os.fspath(path))
    return header["metadata"]


def load_checkpoint(path: str | os.PathLike, like: T) -> T:
    """Read a checkpoint written by `save_checkpoint` into the structure of `like`
    (a tree of the same structure, shapes and dtypes, e.g. a fresh `init` state).

    **Arguments:**

    - `path`: the checkpoint file (a `str` or path-like).
    - `like`: a PyTree of the saved tree's structure, array shapes and dtypes;
      its array leaves are replaced by the saved ones, its other leaves (and
      static fields) are kept. Its values do not matter.

    **Returns:** a tree like `like` holding the saved arrays.

    **Raises:** `FileNotFoundError` for a missing file and `ValueError`, naming
    the file, for a truncated or corrupt one, or one that holds a tree of another
    structure (naming the first array that differs).

    **Example:**

    ```python
    import os
    import tempfile

    import jax
    import jax.numpy as jnp
    import memrl_eqx

    state = {"params": jnp.arange(3.0), "step": jnp.array(7), "key": jax.random.key(0)}
    like = {"params": jnp.zeros(3), "step": jnp.array(0), "key": jax.random.key(1)}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "state.ckpt")
        memrl_eqx.save_checkpoint(path, state)
        restored = memrl_eqx.load_checkpoint(path, like)
    assert restored["step"] == 7 and restored["params"].shape == (3,)
    ```
    """
    path = os.fspath(path)
    header, payload = _read(path)
    saved, expected = header["layout"], _layout(like)
    for (s_path, s_shape, s_dtype), (e_path, e_shape, e_dtype) in zip(saved, expected):
        if (s_path, s_shape, s_dtype) != (e_path, e_shape, e_dtype):
            raise ValueError(
                f"checkpoint {path!r} holds another state than expected: it has "
                f"{s_path} of shape {tuple(s_shape)} and dtype {s_dtype} where "
                f"{e_path} of shape {tuple(e_shape)} and dtype {e_dtype} is expected "
                "(a checkpoint of another configuration?)"
            )
    if len(saved) != len(expected):
        raise ValueError(
            f"checkpoint {path!r} holds another state than expected: {len(saved)} "
            f"arrays where {len(expected)} are expected (a checkpoint of another "
            "configuration?)"
        )
    return eqx.tree_deserialise_leaves(
        io.BytesIO(payload), like, filter_spec=_load_leaf
    )
