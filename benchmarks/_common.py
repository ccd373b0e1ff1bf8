"""Shared timing helpers for the benchmarks: compile apart from steady state."""

import platform
import statistics
import time

import jax


def machine() -> str:
    """One line describing the machine and the JAX build."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [
                line.split(":", 1)[1].strip() for line in f if "model name" in line
            ]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    except OSError:
        pass
    return f"{cpu}; jax {jax.__version__} on {jax.default_backend()}"


def time_compiled(fn, *args, repeats: int = 5) -> tuple[float, float]:
    """Compile `fn` ahead of time on `args`, then time it.

    **Returns:** `(compile_seconds, steady_seconds)`, the second the median of
    `repeats` calls of the compiled function.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return compile_seconds, statistics.median(times)
