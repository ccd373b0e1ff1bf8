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


def time_train(algo, state, steps: int):
    """Time `algo.train(state, steps)`: compilation is the first call less a
    steady one (both from `state`).

    **Returns:** `(compile_seconds, steady_seconds, state)`, `state` after the
    steady call.
    """
    start = time.perf_counter()
    jax.block_until_ready(algo.train(state, steps)[1])
    first = time.perf_counter() - start
    start = time.perf_counter()
    state, metrics = algo.train(state, steps)
    jax.block_until_ready(metrics)
    steady = time.perf_counter() - start
    return first - steady, steady, state


def cartpole_ppo(torso: str, env_id: str = "gymnax::CartPole-v1"):
    """The Flax original's measured PPO configuration: 32 envs x 128 steps per
    update, 4 epochs x 4 minibatches, hidden 64, adam 3e-4 clipped to norm 0.5."""
    import jax.random as jr
    import optax

    import memrl_eqx
    from memrl_eqx.algorithms import PPO, PPOConfig
    from memrl_eqx.envs import make

    env, params = make(env_id)
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso=torso, features=64, key=jr.key(0)
    )
    return PPO(
        config=PPOConfig(
            num_envs=32, num_steps=128, num_minibatches=4, update_epochs=4
        ),
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-4)),
    )


# Primitives that move or relabel data without arithmetic.
_FREE = {
    "broadcast_in_dim", "concatenate", "convert_element_type", "copy", "copy_p",
    "dynamic_slice", "dynamic_update_slice", "gather", "iota", "pad", "reshape",
    "rev", "scatter", "select_and_gather_add", "slice", "squeeze", "transpose",
    "expand_dims", "stop_gradient", "random_bits", "random_seed", "random_wrap",
    "random_unwrap", "threefry2x32", "sharding_constraint", "device_put",
}  # fmt: skip


def flops(fn, *args) -> float:
    """Floating-point operations of one call of `fn(*args)`, counted on its jaxpr.

    XLA's cost analysis (`compiled.cost_analysis()["flops"]`) counts a loop's
    body once, whatever its trip count, so it undercounts every `lax.scan` by
    its length. This count walks the jaxpr instead: a `dot_general` costs
    2 x (output size) x (contracted size), any other arithmetic one operation
    per output element (reductions: per input element), data movement nothing;
    a `scan` body is counted `length` times, a `cond` as its dearest branch.
    """
    return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _size(var) -> int:
    shape = getattr(var.aval, "shape", ())
    n = 1
    for d in shape:
        n *= d
    return n


def _jaxpr_flops(jaxpr) -> float:
    import jax.extend.core as jcore

    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        subs = [
            p.jaxpr if isinstance(p, jcore.ClosedJaxpr) else p
            for p in eqn.params.values()
            if isinstance(p, (jcore.ClosedJaxpr, jcore.Jaxpr))
        ]
        if name == "scan":
            total += eqn.params["length"] * _jaxpr_flops(subs[0])
        elif name == "cond":
            branches = eqn.params["branches"]
            total += max(_jaxpr_flops(b.jaxpr) for b in branches)
        elif name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            k = 1
            for d in contract:
                k *= lhs[d]
            total += 2.0 * _size(eqn.outvars[0]) * k
        elif subs:
            total += sum(_jaxpr_flops(s) for s in subs)
        elif name.startswith("reduce_") or name.startswith("cum"):
            total += sum(_size(v) for v in eqn.invars if hasattr(v, "aval"))
        elif name not in _FREE:
            total += sum(_size(v) for v in eqn.outvars)
    return total


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 FLOP/s on a large matrix product (the roofline's
    ceiling), the median of `repeats` timed calls after compilation."""
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.float32)
    _, seconds = time_compiled(lambda a, b: a @ b, a, a, repeats=repeats)
    return 2.0 * size**3 / seconds
