"""`shard`: place a training state on a device mesh, environments split across it."""

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.tree_util as jtu
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P


_State = TypeVar("_State")

_FIELDS = "env_batched_fields"
"""The ClassVar through which a state class names its environment-batched fields."""


def shard(
    state: _State, mesh: Mesh, axis: str = "envs", *, vmapped_axes: int = 0
) -> _State:
    """Place a training state on `mesh`, its environments split across `axis`.

    Every leaf that carries the environment batch on its leading axis (the
    environment states, the next timesteps, the recurrent carries, PPO's burn-in
    steps, and the replay buffer's storage and priorities, whose leading axis is
    the environment a slot belongs to) is split across the devices of the mesh
    axis `axis`: `NamedSharding(mesh, P(axis))`. Every other leaf (parameters,
    target networks, optimiser state, counters, keys, the replay's write head)
    is replicated: `NamedSharding(mesh, P())`.

    The algorithms' jitted `train`, `warmup` and `evaluate` need nothing else:
    JAX's compiler (GSPMD) propagates these shardings through the traced step,
    so each device steps, acts for and stores only its own environments. For a
    state placed by `shard`, `train` also splits each learner batch (PPO's and
    PQN's minibatches, DQN's and SAC's replayed windows) across `axis` (one
    `lax.with_sharding_constraint` at the top of the loss), so the gradient is
    computed in parts and all-reduced by the compiler. The result equals a
    one-device run of the same global batch up to the order of float32
    reductions, and the returned state stays placed.

    The mesh is used with `Auto` axes (its devices and names, whatever its
    axis types): the algorithms rely on sharding propagation, not on shardings
    in types (`jax.make_mesh` makes `Explicit` axes by default).

    **Which leaves are environment-batched** is decided by the state's *fields*,
    never by shapes (a parameter may well have `num_envs` rows): a state class
    names them in a `ClassVar`, `env_batched_fields`, a tuple of field names,
    where a dotted name (`"buffer.experience"`) reaches into a field's own
    fields. `PPOState`, `PQNState`, the replay methods' `Acting` and the
    replay's `ReplayState` declare theirs; `DQNState` and `SACState` hold an
    `Acting` and a `ReplayState`, which are found wherever they sit in the
    tree. A custom state takes part by declaring the same `ClassVar`. A field
    named there may be None (PPO's burn-in fields without burn-in).

    **Arguments:**

    - `state`: a training state (`PPOState`, `DQNState`, `PQNState`,
      `SACState`, or any PyTree holding them), as `algo.init(key)` returns it.
    - `mesh`: a `jax.sharding.Mesh`, e.g. `jax.make_mesh((4,), ("envs",))`; for
      several hosts, one over all processes' devices, after
      `jax.distributed.initialize()`.
    - `axis`: the name of the mesh axis the environments are split across.
      Other mesh axes, if any, replicate.
    - `vmapped_axes`: how many axes stand in front of the environment axis
      because the state was made under `eqx.filter_vmap` (1 for
      `eqx.filter_vmap(algo.init)(keys)` over seeds). Those axes are kept
      whole on every device; the environment axis after them is split.

    **Returns:** the same state, with every array leaf placed as above.

    **Raises:** `ValueError`, before anything is placed, if the mesh has no
    axis `axis`, or if the number of environments is not divisible by that
    axis's size.

    **Example:** for an algorithm on 4 devices, `state =
    memrl_eqx.shard(algo.init(key), jax.make_mesh((4,), ("envs",)))` places 8
    of 32 environments on each device, and `algo.train(state, num_steps)` is the
    same code as before. A custom state, on the devices there are (one will do):

    ```python
    from typing import ClassVar

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import memrl_eqx
    from jax.sharding import PartitionSpec as P


    class State(eqx.Module):
        env_batched_fields: ClassVar[tuple[str, ...]] = ("obs",)
        obs: jax.Array  # (num_envs, 3): one row per environment
        params: jax.Array  # replicated


    devices = len(jax.devices())
    mesh = jax.make_mesh((devices,), ("envs",))
    state = State(obs=jnp.zeros((4 * devices, 3)), params=jnp.ones(5))
    state = memrl_eqx.shard(state, mesh)
    assert state.obs.sharding.spec == P("envs")  # 4 environments per device
    assert state.params.sharding.spec == P()
    ```

    On several hosts, call `jax.distributed.initialize()` first and build the
    mesh from `jax.devices()` (every process's devices); every process runs the
    same program with the same key, so that the states it places are equal
    (each process fills its own devices' shards from its copy).
    """
    if axis not in mesh.axis_names:
        raise ValueError(
            f"shard: the mesh has no axis {axis!r} to split the environments "
            f"across; its axes are {tuple(mesh.axis_names)}."
        )
    if not isinstance(vmapped_axes, int) or vmapped_axes < 0:
        raise ValueError(
            "shard: `vmapped_axes` must be a non-negative integer; "
            f"got {vmapped_axes!r}."
        )
    marks = _marks(state, frozenset())
    sizes = set()
    jtu.tree_map(
        lambda x, m: sizes.add(_env_size(x, vmapped_axes)) if m is _BATCHED else None,
        state,
        marks,
    )
    if not sizes:
        raise ValueError(
            f"shard: no environment-batched leaves in a {type(state).__name__}: its "
            f"classes declare none (see the `{_FIELDS}` ClassVar)."
        )
    if len(sizes) > 1:
        raise ValueError(
            "shard: the environment-batched leaves disagree on the number of "
            f"environments ({sorted(sizes)}) on axis {vmapped_axes}; is "
            f"`vmapped_axes` ({vmapped_axes}) right?"
        )
    (num_envs,) = sizes
    devices = mesh.shape[axis]
    if num_envs % devices:
        raise ValueError(
            f"shard: num_envs ({num_envs}) is not divisible by the size "
            f"({devices}) of the mesh axis {axis!r}."
        )
    # The algorithms are written for the compiler to propagate shardings
    # (GSPMD), not for shardings in types: Explicit axes (`jax.make_mesh`'s
    # default) would make every vmap over environments demand equally sharded
    # inputs. So the mesh's devices and names are used with Auto axes.
    mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=_auto(mesh))
    shardings = {
        _BATCHED: NamedSharding(mesh, P(*(None,) * vmapped_axes, axis)),
        _REPLICATED: NamedSharding(mesh, P()),
    }
    return jtu.tree_map(
        lambda x, m: x if m is None else _place(x, shardings[m]), state, marks
    )


_LEARNER_AXIS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "memrl_eqx_learner_axis", default=None
)
"""The mesh axis the learner's batch is split across while an algorithm traces
its training step for a sharded state (see `sharded_training`)."""


@contextlib.contextmanager
def sharded_training(state: Any) -> Iterator[None]:
    """Trace an algorithm's training step for `state`'s placement.

    If `state` was placed by `shard` (its environment-batched leaves are
    concrete arrays split across a mesh axis), the block runs under
    `jax.set_mesh` of that mesh, and `constrain_batch` splits the learner's
    batches across the same axis. Otherwise (an unsharded state, or a traced one,
    e.g. under `eqx.filter_vmap`) it does nothing. Sharding constraints never
    change values, only where they are computed."""
    sharding = _env_sharding(state)
    if sharding is None or not jax.sharding.get_abstract_mesh().empty:
        yield
        return
    axis = [a for a in sharding.spec if a is not None][0]
    token = _LEARNER_AXIS.set(axis)
    try:
        with jax.set_mesh(sharding.mesh):
            yield
    finally:
        _LEARNER_AXIS.reset(token)


def constrain_batch(tree: _State) -> _State:
    """Within `sharded_training`, ask the compiler to split the leading (batch)
    axis of every array leaf of `tree` across the environments' mesh axis, so
    that a loss over a learner batch (PPO's minibatch of trajectories, a replay
    sample) is computed in parts and its gradients are all-reduced. Leaves whose
    batch does not divide evenly are left to the compiler. Elsewhere the
    identity. The result equals `tree`."""
    axis = _LEARNER_AXIS.get()
    mesh = jax.sharding.get_abstract_mesh()
    if axis is None or mesh.empty or axis not in mesh.axis_names:
        return tree
    size = mesh.shape[axis]

    def constrain(x):
        if not eqx.is_array(x) or x.ndim == 0 or x.shape[0] % size:
            return x
        return jax.lax.with_sharding_constraint(x, P(axis))

    return jtu.tree_map(constrain, tree)


def _env_sharding(state: Any) -> NamedSharding | None:
    """The sharding of `state`'s environment-batched leaves, if they are concrete
    arrays split across a mesh axis; else None."""
    try:
        marks = _marks(state, frozenset())
    except ValueError:
        return None
    found = []
    jtu.tree_map(lambda x, m: found.append(x) if m is _BATCHED else None, state, marks)
    for x in found:
        sharding = getattr(x, "sharding", None)
        if (
            isinstance(x, jax.Array)
            and not isinstance(x, jax.core.Tracer)
            and isinstance(sharding, NamedSharding)
            and any(a is not None for a in sharding.spec)
            and len(sharding.device_set) > 1
        ):
            return sharding
    return None


def _auto(mesh: Mesh) -> tuple[AxisType, ...]:
    return (AxisType.Auto,) * len(mesh.axis_names)


def _env_size(leaf: Any, vmapped_axes: int) -> int:
    shape = np.shape(leaf)
    if len(shape) <= vmapped_axes:
        raise ValueError(
            f"shard: an environment-batched leaf of shape {shape} has no axis "
            f"after the {vmapped_axes} vmapped one(s)."
        )
    return shape[vmapped_axes]


def _place(leaf: Any, sharding: NamedSharding) -> Any:
    if sharding.is_fully_addressable:
        return jax.device_put(leaf, sharding)
    # Several processes: each holds the whole (equal) state and contributes
    # the shards its devices own.
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _place(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])


def _declared(node: Any) -> frozenset[str]:
    return frozenset(getattr(type(node), _FIELDS, ()))


def _is_array(x: Any) -> bool:
    return eqx.is_array(x) or isinstance(x, np.ndarray)


class _Mark:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return self.name


_BATCHED = _Mark("batched")
_REPLICATED = _Mark("replicated")


def _marks(node: Any, names: frozenset[str]) -> Any:
    """A PyTree like `node` whose array leaves are `_BATCHED` or `_REPLICATED`
    and whose other leaves are None. `names` are the fields of `node` that its
    parent names environment-batched (the tails of dotted names)."""
    names = names | _declared(node)
    if not names:
        # Nothing here is batched; but a declaring node may sit further down.
        return jtu.tree_map(
            lambda x: (
                _marks(x, frozenset())
                if x is not node and _declared(x)
                else (_REPLICATED if _is_array(x) else None)
            ),
            node,
            is_leaf=lambda x: x is not node and bool(_declared(x)),
        )
    missing = sorted(
        h for h in {n.split(".")[0] for n in names} if not hasattr(node, h)
    )
    if missing:
        raise ValueError(
            f"shard: {type(node).__name__} names {missing} as "
            f"environment-batched (`{_FIELDS}`), but has no such field."
        )
    children, treedef = jtu.tree_flatten_with_path(
        node, is_leaf=lambda x: x is not node
    )
    out = []
    for path, child in children:
        name = getattr(path[0], "name", None)
        if name in names:
            out.append(
                jtu.tree_map(lambda x: _BATCHED if _is_array(x) else None, child)
            )
        else:
            tails = frozenset(
                n.split(".", 1)[1] for n in names if n.startswith(f"{name}.")
            )
            out.append(_marks(child, tails))
    return jtu.tree_unflatten(treedef, out)
