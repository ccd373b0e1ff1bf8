"""memrl_eqx beside the Flax original (PyPI `memorax==1.0.1`), timed in one run.

Both libraries do identical work and each measurement runs in a fresh worker
process (so neither library's compilation caches help the other, and each
worker's peak resident memory is its own):

- `ppo`: PPO on gymnax CartPole-v1, 32 envs x 128 steps per update, 4 epochs x
  4 minibatches, hidden 64, adam 3e-4 clipped to global norm 0.5 (one optimizer
  per network, as in the original), for the GRU, LRU and memoryless torsos:
  environment steps/s after compilation, and compile time apart.
- `models`: forward+backward (the gradient of the mean squared output with
  respect to the parameters) of every sequence model in both libraries, over
  32 sequences of T steps, 64 features, resets with probability 0.01: tokens/s
  and compile time.
- `memory`: the peak resident memory of each model's backward pass at T =
  `--memory-length`; a worker that runs out of memory (`--memory-limit`) or
  crashes is reported as failed and the run goes on.

Run it in an environment with the `bench` extra (memorax has to be importable):

    pip install -e ".[bench]"
    python benchmarks/compare_memorax.py [--only ppo|models|memory]
        [--torsos gru lru mlp] [--updates 10] [--models gru lru ...]
        [--lengths 1024] [--repeats 3] [--memory-length 4096] [--memory-limit 12]
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version


BATCH, FEATURES = 32, 64
ENV_ID = "gymnax::CartPole-v1"
# Sizes given to both libraries, by our torso name. Every model gets
# `features` = 64 (its input and output width); the rest are the original's
# defaults where it has them, else our `make_torso` sizes. `context_length` of
# attention is set to T by the worker: the original asserts T <= context_length.
MODELS: dict[str, dict] = {
    "gru": {},
    "lstm": {},
    "lru": {"hidden": 64},
    "s5": {"hidden": 64},
    "min_gru": {},
    "ffm": {"memory_size": 32, "context_size": 64},
    "linear_attention": {"heads": 4, "head_dim": 16},
    "mamba2": {"heads": 8, "head_dim": 16, "state_dim": 16},
    "mlstm": {"hidden": 128, "heads": 4},
    "slstm": {"hidden": 64, "heads": 4, "conv_kernel": 4},
    "shm": {"memory": 64},
    "self_attention": {"heads": 4, "context_length": "T"},
}
# Where the two libraries' models are not the same model (names: ours).
DIFFERENT = {
    "lstm": "the original's is flax `OptimizedLSTMCell` (same maths, fused gates)",
    "lru": "ours has a full D matrix (features x in_features, so the input "
    "and output widths may differ), the original a diagonal D",
    "mamba2": "the original 1.0.1 has only `MambaCell` (B and C per head, no "
    "causal conv, no norm); ours is Mamba-2 (B and C shared by the heads, a "
    "causal conv, RMSNorm before the gate); same heads, head and state sizes",
    "mlstm": "the original 1.0.1 mLSTM has no up-projection, causal conv, "
    "multi-head LayerNorm, skip or output gate; ours is the xLSTM paper's block",
    "shm": "row 0 of the theta table every step in both (ours `sample_theta="
    "False`; the original without a `memory` rng)",
    "self_attention": "no positional embedding; context_length = T in both "
    "(the original attends to cache + chunk, ours to a window of T + 1)",
}


# ---------------------------------------------------------------- our side
def _our_model(name: str, sizes: dict):
    import jax.random as jr

    from memrl_eqx import nn as mnn

    f, key = sizes["features"], jr.key(0)
    common = dict(in_features=f, features=f, key=key)
    builders = {
        "gru": lambda: mnn.RNN(mnn.GRUCell(**common)),
        "lstm": lambda: mnn.RNN(mnn.LSTMCell(**common)),
        "lru": lambda: mnn.Memoroid(mnn.LRUCell(**common, hidden_dim=sizes["hidden"])),
        "s5": lambda: mnn.Memoroid(mnn.S5Cell(**common, hidden_dim=sizes["hidden"])),
        "min_gru": lambda: mnn.Memoroid(mnn.MinGRUCell(**common)),
        "ffm": lambda: mnn.Memoroid(
            mnn.FFMCell(
                **common,
                memory_size=sizes["memory_size"],
                context_size=sizes["context_size"],
            )
        ),
        "linear_attention": lambda: mnn.Memoroid(
            mnn.LinearAttentionCell(
                **common, num_heads=sizes["heads"], head_dim=sizes["head_dim"]
            )
        ),
        "mamba2": lambda: mnn.Memoroid(
            mnn.Mamba2Cell(
                **common,
                num_heads=sizes["heads"],
                head_dim=sizes["head_dim"],
                state_dim=sizes["state_dim"],
            )
        ),
        "mlstm": lambda: mnn.Memoroid(
            mnn.mLSTMCell(
                **common, hidden_dim=sizes["hidden"], num_heads=sizes["heads"]
            )
        ),
        "slstm": lambda: mnn.RNN(
            mnn.sLSTMCell(
                **common,
                hidden_dim=sizes["hidden"],
                num_heads=sizes["heads"],
                conv_kernel_size=sizes["conv_kernel"],
            )
        ),
        "shm": lambda: mnn.RNN(
            mnn.SHMCell(
                in_features=f,
                features=sizes["memory"],
                output_features=f,
                sample_theta=False,
                key=key,
            )
        ),
        "self_attention": lambda: mnn.SelfAttention(
            **common,
            num_heads=sizes["heads"],
            context_length=sizes["context_length"],
        ),
    }
    return builders[name]()


def _our_sequence_fns(name: str, sizes: dict, batch: int, length: int):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    model = _our_model(name, sizes)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(params, carry, xs, resets):
        model = eqx.combine(params, static)
        return jnp.mean(jax.vmap(model)(carry, xs, resets)[1] ** 2)

    carry = jax.vmap(lambda _: model.init_carry())(jnp.arange(batch))
    xs = jr.normal(jr.key(1), (batch, length, sizes["features"]))
    resets = jr.bernoulli(jr.key(2), 0.01, (batch, length))
    return jax.grad(loss), (params, carry, xs, resets)


def _per_network(transform):
    """`transform` applied to the actor's and the critic's parameters apart (its
    own state and gradient clipping for each), as the original's two optimizers."""
    import jax.tree_util as jtu
    import optax

    def labels(params):
        actor, critic = params
        return (
            jtu.tree_map(lambda _: "actor", actor),
            jtu.tree_map(lambda _: "critic", critic),
        )

    return optax.multi_transform({"actor": transform, "critic": transform}, labels)


def _our_ppo(torso: str):
    import jax.random as jr
    import optax

    import memrl_eqx
    from memrl_eqx.algorithms import PPO, PPOConfig
    from memrl_eqx.envs import make

    env, env_params = make(ENV_ID)
    actor, critic = memrl_eqx.actor_critic(
        env, env_params, torso=torso, features=FEATURES, key=jr.key(0)
    )
    # value_coefficient 1: with one optimizer per network, the critic's
    # gradient is the original's critic loss exactly.
    config = PPOConfig(
        num_envs=32,
        num_steps=128,
        num_minibatches=4,
        update_epochs=4,
        gamma=0.99,
        gae_lambda=0.95,
        clip_coefficient=0.2,
        entropy_coefficient=0.01,
        value_coefficient=1.0,
        normalize_advantage=True,
        clip_value_loss=True,
    )
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-4))
    algo = PPO(
        config=config,
        env=env,
        env_params=env_params,
        actor=actor,
        critic=critic,
        optimizer=_per_network(optimizer),
    )
    state = algo.init(jr.key(0))
    return lambda state, steps: algo.train(state, steps), state, config.batch_size


# ------------------------------------------------------------------ workers
def _param_count(params) -> int:
    import jax

    return sum(int(x.size) for x in jax.tree.leaves(params) if hasattr(x, "size"))


def _sizes(name: str, length: int) -> dict:
    sizes = {"features": FEATURES, **MODELS[name]}
    if sizes.get("context_length") == "T":
        sizes["context_length"] = length
    return sizes


def _sequence_fns(lib: str, name: str, length: int):
    sizes = _sizes(name, length)
    if lib == "ours":
        return _our_sequence_fns(name, sizes, BATCH, length)
    import _memorax_side

    return _memorax_side.sequence_fns(name, sizes, BATCH, length)


def _run_model(job: dict) -> dict:
    from _common import time_compiled

    grad, inputs = _sequence_fns(job["lib"], job["name"], job["length"])
    compile_s, steady_s = time_compiled(grad, *inputs, repeats=job["repeats"])
    tokens = BATCH * job["length"]
    return {
        "compile": compile_s,
        "rate": tokens / steady_s,
        "params": _param_count(inputs[0]),
    }


def _run_memory(job: dict, result: dict) -> None:
    import jax

    grad, inputs = _sequence_fns(job["lib"], job["name"], job["length"])
    result["base"] = _peak_mib(resource.RUSAGE_SELF)
    jax.block_until_ready(jax.jit(grad)(*inputs))


def _run_ppo(job: dict) -> dict:
    import jax

    if job["lib"] == "ours":
        train, state, batch_size = _our_ppo(job["torso"])
        call = lambda state, steps: train(state, steps)[0]
    else:
        import _memorax_side

        train, state, key, batch_size = _memorax_side.ppo(
            job["torso"], FEATURES, ENV_ID
        )
        state = (key, state)
        call = lambda state, steps: train(*state, steps)[:2]
    steps = job["updates"] * batch_size
    times = []
    for _ in range(2 + job["repeats"]):
        start = time.perf_counter()
        state = jax.block_until_ready(call(state, steps))
        times.append(time.perf_counter() - start)
    # Compilation: the first two calls of the jitted loop, less two steady ones
    # (the original traces again on its second call: its state's reward turns
    # weak-typed after the first).
    steady = statistics.median(times[2:])
    return {"compile": sum(times[:2]) - 2 * steady, "rate": steps / steady}


def _describe(error: Exception) -> str:
    found = re.search(r"Out of memory allocating (\d+) bytes", str(error))
    if found:
        return f"out of memory: a {int(found[1]) / 2**30:.1f} GiB buffer"
    return f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"


def _peak_mib(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def worker(job: dict) -> None:
    """Run one measurement in this process and print it as a JSON line."""
    limit = int(job["memory_limit"] * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    result = {}
    try:
        if job["kind"] == "memory":
            _run_memory(job, result)
        else:
            result.update({"model": _run_model, "ppo": _run_ppo}[job["kind"]](job))
    except Exception as error:  # reported, and the run goes on
        result["error"] = _describe(error)
    result["peak"] = _peak_mib(resource.RUSAGE_SELF)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(job: dict) -> dict:
    """Run `job` in a fresh worker; its result, with `peak` its peak RSS (MiB)
    and `error` set if it failed."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = [x for x in out.read().splitlines() if x.startswith("RESULT ")]
        tail = err.read().strip().splitlines()[-1:]
    if lines:
        return json.loads(lines[-1][len("RESULT ") :])
    reason = f"exit code {process.returncode}"
    if tail:
        reason += f": {tail[0][:120]}"
    return {"error": reason, "peak": usage.ru_maxrss / 1024}


# ------------------------------------------------------------------- report
def _num(result: dict, key: str, fmt: str) -> str:
    if "error" in result:
        return f"failed ({result['error']})"
    return format(result[key], fmt)


def _ratio(ours: dict, original: dict, key: str) -> str:
    if "error" in ours or "error" in original or not original[key]:
        return "–"
    return f"{ours[key] / original[key]:.2f}×"


def run_ppo(args) -> None:
    print(
        f"\n## PPO, {ENV_ID} ({args.updates} updates of 32 envs × 128 steps "
        f"timed after compilation, median of {args.repeats} calls; compile = "
        "the first two calls less two steady ones)\n"
    )
    print(
        "| torso | ours steps/s | original steps/s | ratio | ours compile (s) "
        "| original compile (s) | compile ratio | ours peak RSS (MiB) "
        "| original peak RSS (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    results = {}
    for torso in args.torsos:
        job = dict(kind="ppo", torso=torso, updates=args.updates)
        job.update(repeats=args.repeats, memory_limit=args.memory_limit)
        ours = spawn({**job, "lib": "ours"})
        original = spawn({**job, "lib": "original"})
        results[torso] = ours, original
        print(
            f"| {torso} | {_num(ours, 'rate', ',.0f')} "
            f"| {_num(original, 'rate', ',.0f')} | {_ratio(ours, original, 'rate')} "
            f"| {_num(ours, 'compile', '.1f')} | {_num(original, 'compile', '.1f')} "
            f"| {_ratio(ours, original, 'compile')} | {ours['peak']:,.0f} "
            f"| {original['peak']:,.0f} |",
            flush=True,
        )
    if "gru" in results and "mlp" in results:
        for i, lib in enumerate(("ours", "original")):
            gru, mlp = results["gru"][i], results["mlp"][i]
            print(f"\nGRU / memoryless steps/s, {lib}: {_ratio(gru, mlp, 'rate')}")


def run_models(args) -> None:
    print(
        f"\n## Sequence models, forward+backward tokens/s (batch {BATCH}, "
        f"features {FEATURES}, resets p=0.01; median of {args.repeats} calls)\n"
    )
    print(
        "| model | T | sizes | params ours / original | ours tokens/s "
        "| original tokens/s | ratio | ours compile (s) | original compile (s) "
        "| compile ratio | peak RSS ours / original (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        for length in args.lengths:
            job = dict(kind="model", name=name, length=length, repeats=args.repeats)
            job["memory_limit"] = args.memory_limit
            ours = spawn({**job, "lib": "ours"})
            original = spawn({**job, "lib": "original"})
            for lib, result in (("ours", ours), ("original", original)):
                if result.get("error", "").startswith("out of memory"):
                    OUT_OF_MEMORY.setdefault((lib, name), length)
            sizes = ", ".join(f"{k} {v}" for k, v in _sizes(name, length).items())
            params = f"{_num(ours, 'params', ',')} / {_num(original, 'params', ',')}"
            print(
                f"| {name} | {length} | {sizes} | {params} "
                f"| {_num(ours, 'rate', ',.0f')} | {_num(original, 'rate', ',.0f')} "
                f"| {_ratio(ours, original, 'rate')} "
                f"| {_num(ours, 'compile', '.2f')} "
                f"| {_num(original, 'compile', '.2f')} "
                f"| {_ratio(ours, original, 'compile')} "
                f"| {ours['peak']:,.0f} / {original['peak']:,.0f} |",
                flush=True,
            )


# (library, model) -> the shortest length at which it ran out of memory.
OUT_OF_MEMORY: dict[tuple[str, str], int] = {}


def _memory_job(job: dict, lib: str) -> dict:
    """`spawn` the memory job, unless the models section already saw it run out
    of memory at a length no longer (under the same limit)."""
    shorter = OUT_OF_MEMORY.get((lib, job["name"]))
    if shorter is not None and shorter <= job["length"]:
        return {"error": f"out of memory already at T = {shorter}", "peak": 0.0}
    return spawn({**job, "lib": lib})


def run_memory(args) -> None:
    print(
        f"\n## Peak memory of one forward+backward pass at T = {args.memory_length} "
        f"(batch {BATCH}, features {FEATURES}; limit {args.memory_limit:g} GiB)\n"
    )
    print(
        "| model | ours peak RSS (MiB) | original peak RSS (MiB) | ratio "
        "| ours / original RSS before the pass (MiB) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name in args.models:
        job = dict(kind="memory", name=name, length=args.memory_length)
        job["memory_limit"] = args.memory_limit
        ours, original = (_memory_job(job, lib) for lib in ("ours", "original"))
        cells = [
            f"failed ({r['error']})" if "error" in r else f"{r['peak']:,.0f}"
            for r in (ours, original)
        ]
        base = " / ".join(
            f"{r['base']:,.0f}" if "base" in r else "–" for r in (ours, original)
        )
        print(
            f"| {name} | {cells[0]} | {cells[1]} | {_ratio(ours, original, 'peak')} "
            f"| {base} |",
            flush=True,
        )


def _notes() -> None:
    print("\nDifferences that remain between the two sides:\n")
    print(
        "- PPO: the original treats time limits as terminal and normalises the "
        "advantages over the whole rollout once; ours bootstraps truncated "
        "episodes from the critic (one extra critic call on steps where an "
        "episode is truncated) and normalises per minibatch. Memoryless: the "
        "original shuffles single steps into minibatches, ours whole "
        "trajectories (the same number of samples). The original runs on "
        "gymnax 1.0 through a five-value `step` shim."
    )
    for name, text in DIFFERENT.items():
        print(f"- {name}: {text}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["ppo", "models", "memory"], default=None)
    parser.add_argument("--torsos", nargs="+", default=["gru", "lru", "mlp"])
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-length", type=int, default=4096)
    parser.add_argument(
        "--memory-limit", type=float, default=12.0, help="GiB per worker"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    from _common import machine

    print(f"machine: {machine()}")
    print(
        f"memrl_eqx {version('memrl_eqx')} (equinox {version('equinox')}) vs "
        f"memorax {version('memorax')} (flax {version('flax')}), each measurement "
        "in a fresh process"
    )
    start = time.perf_counter()
    sections = {"ppo": run_ppo, "models": run_models, "memory": run_memory}
    for name, run in sections.items():
        if args.only in (None, name):
            run(args)
    _notes()
    print(f"\nTotal wall clock: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
