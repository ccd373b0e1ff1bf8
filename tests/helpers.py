import pathlib
import struct

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
from tensorboardX.proto import event_pb2


def tree_allclose(x, y, *, rtol=1e-5, atol=1e-6):
    """True if two PyTrees have the same structure, dtypes and close leaves."""
    return bool(eqx.tree_equal(x, y, typematch=True, rtol=rtol, atol=atol))


def tree_max_abs_diff(x, y) -> float:
    diffs = jtu.tree_map(lambda a, b: jnp.max(jnp.abs(a - b)), x, y)
    return float(max(jtu.tree_leaves(diffs), default=0.0))


def reference_loop(step, init, xs, resets):
    """A plain step-by-step loop over `step(carry, x) -> (carry, y)`; a reset
    starts over from `init`. The reference that step cells are compared with."""
    import jax

    step = jax.jit(step)
    carry, ys = init, []
    for x, reset in zip(xs, resets):
        if reset:
            carry = init
        carry, y = step(carry, x)
        ys.append(y)
    return jnp.stack(ys)


def read_events(path: pathlib.Path) -> list:
    """Parse a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    data = path.read_bytes()
    events, i = [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + length]))
        i += 12 + length + 4
    return events
