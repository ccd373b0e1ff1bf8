import contextlib
import functools
import pathlib
import re
import struct
import textwrap

import equinox as eqx
import jax
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


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of Markdown `text`, in order, each dedented (blocks
    nested in a tab, an admonition or a docstring are indented)."""
    pattern = r"^([ \t]*)```python[^\n]*\n(.*?)^\1```"
    found = re.findall(pattern, text, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


def run_program(source: str, name: str, namespace: dict) -> None:
    """Executes documentation code as a user runs it: under JAX's default
    promotion rules (the suite's conftest makes them strict)."""
    with jax.numpy_dtype_promotion("standard"):
        exec(compile(source, name, "exec"), namespace)


def read_events(path: pathlib.Path) -> list:
    """Parse a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    data = path.read_bytes()
    events, i = [], 0
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i : i + 8])
        events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + length]))
        i += 12 + length + 4
    return events


# What `jax_disable_most_optimizations` sets, and XLA:CPU's fusion emitters off.
FAST_OPTIONS = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
FAST_XLA_FLAGS = " ".join(f"--{k}={str(v).lower()}" for k, v in FAST_OPTIONS.items())
"""`FAST_OPTIONS` as `XLA_FLAGS`, for a subprocess to compile as the tests do."""


class _FastCompile:
    on = False


def _hook_compile_options():
    """Add `FAST_OPTIONS` to every compilation while `_FastCompile.on`.

    `jax.jit` takes XLA options per function (`compiler_options`); JAX's global
    switch (`jax_disable_most_optimizations`) is read once per process and
    leaves the fusion emitters on, which are most of a small program's compile
    time. So the suite adds the options through the function that builds every
    compilation's options. Guarded: if JAX moves that function, tests compile
    as they would without the hook."""
    try:
        from jax._src import compiler
    except ImportError:
        return
    original = getattr(compiler, "get_compile_options", None)
    if original is None or getattr(original, "_memrl_eqx_hook", False):
        return

    @functools.wraps(original)
    def get_compile_options(*args, env_options_overrides=None, **kwargs):
        if _FastCompile.on:
            env_options_overrides = {**FAST_OPTIONS, **(env_options_overrides or {})}
        return original(*args, env_options_overrides=env_options_overrides, **kwargs)

    get_compile_options._memrl_eqx_hook = True
    compiler.get_compile_options = get_compile_options


_hook_compile_options()


@contextlib.contextmanager
def fast_compile():
    """Compile for the speed of compilation inside the block: `O0` and
    `FAST_OPTIONS` (the tests' small programs run a few times, so XLA's
    optimisations cost far more than they save)."""
    import jax

    previous, was_on = jax.config.jax_optimization_level, _FastCompile.on
    jax.config.update("jax_optimization_level", "O0")
    _FastCompile.on = True
    try:
        yield
    finally:
        _FastCompile.on = was_on
        jax.config.update("jax_optimization_level", previous)
