"""Forward and forward+backward tokens/s of the sequence models.

Batch 32 sequences (vmapped), features 64, random resets (p=0.01); the
backward pass is the gradient of the mean squared output with respect to the
model's parameters. Compile time is reported apart from steady state.

    python benchmarks/sequence_models.py [--models gru lru] [--lengths 128 1024]
        [--scans auto associative chunked] [--png tokens_vs_length.png]

Each row also gives the roofline: forward+backward FLOPs per token (counted on
the jaxpr, scan bodies times their length; see `_common.flops`), the achieved
FLOP/s, and that as a fraction of the machine's float32 matmul peak measured at
the start of the run. `--scans` runs every Memoroid with each scan (`auto` is
the library's default choice). With `--png`, also draws forward+backward
tokens/s against T for every model and scan (log-log).
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from _common import flops, machine, matmul_peak, time_compiled

import memrl_eqx
import memrl_eqx.nn as mnn


def _fns(model):
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def forward(params, carry, xs, resets):
        model = eqx.combine(params, static)
        return jax.vmap(model)(carry, xs, resets)[1]

    def loss(params, carry, xs, resets):
        return jnp.mean(forward(params, carry, xs, resets) ** 2)

    return params, forward, jax.grad(loss)


def _variants(name: str, model, scans: list[str]):
    """`(label, model)` for each scan of a Memoroid model; a model without a
    Memoroid once, as it is."""
    is_memoroid = lambda x: isinstance(x, mnn.Memoroid)
    memoroids = lambda m: [
        x for x in jax.tree_util.tree_leaves(m, is_leaf=is_memoroid) if is_memoroid(x)
    ]
    if not memoroids(model):
        return [(name, model)]
    return [
        (
            name if scan == "auto" else f"{name} [{scan}]",
            eqx.tree_at(
                memoroids, model, replace_fn=lambda m: mnn.Memoroid(m.cell, scan=scan)
            ),
        )
        for scan in scans
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=sorted(memrl_eqx.TORSOS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 1024])
    parser.add_argument("--scans", nargs="+", default=["auto"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-forward", action="store_true", help="fwd+bwd only")
    parser.add_argument("--png", default=None, help="write a tokens/s-vs-T plot")
    args = parser.parse_args()
    curves: dict[str, list[tuple[int, float]]] = {}
    B, F = args.batch, args.features
    peak = matmul_peak()
    print(f"machine: {machine()}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(
        "| model | T | forward tokens/s | fwd+bwd tokens/s | compile fwd (s) "
        "| compile fwd+bwd (s) | fwd+bwd kFLOP/token | GFLOP/s | of peak |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        built = memrl_eqx.make_torso(name, in_features=F, features=F, key=jr.key(0))
        for label, model in _variants(name, built, args.scans):
            params, forward, grad = _fns(model)
            for T in args.lengths:
                carry = jax.vmap(lambda _: model.init_carry())(jnp.arange(B))
                xs = jr.normal(jr.key(1), (B, T, F))
                resets = jr.bernoulli(jr.key(2), 0.01, (B, T))
                inputs = (params, carry, xs, resets)
                if args.no_forward:
                    c_fwd, t_fwd = float("nan"), float("nan")
                else:
                    c_fwd, t_fwd = time_compiled(forward, *inputs, repeats=args.repeats)
                c_bwd, t_bwd = time_compiled(grad, *inputs, repeats=args.repeats)
                tokens = B * T
                work = flops(grad, *inputs)
                curves.setdefault(label, []).append((T, tokens / t_bwd))
                print(
                    f"| {label} | {T} | {tokens / t_fwd:,.0f} | {tokens / t_bwd:,.0f} "
                    f"| {c_fwd:.2f} | {c_bwd:.2f} | {work / tokens / 1e3:,.0f} "
                    f"| {work / t_bwd / 1e9:.1f} | {work / t_bwd / peak:.0%} |",
                    flush=True,
                )
    if args.png:
        _plot(args.png, curves, B, F)


def _plot(path, curves, batch, features):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for label, points in sorted(curves.items()):
        lengths, rates = zip(*points)
        name = label.split(" ")[0]
        model = memrl_eqx.make_torso(name, in_features=4, features=4, key=jr.key(0))
        kind = "Memoroid" if isinstance(model, mnn.Memoroid) else type(model).__name__
        style = "-" if kind == "Memoroid" else "--"
        ax.plot(lengths, rates, style, marker="o", label=f"{label} ({kind})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("forward+backward tokens/s")
    ax.set_title(f"batch {batch}, features {features}, CPU")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
