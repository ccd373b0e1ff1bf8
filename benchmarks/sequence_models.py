"""Forward and forward+backward tokens/s of the sequence models.

Batch 32 sequences (vmapped), features 64, random resets (p=0.01); the
backward pass is the gradient of the mean squared output with respect to the
model's parameters. Compile time is reported apart from steady state.

    python benchmarks/sequence_models.py [--models gru lru] [--lengths 128 1024]
        [--png tokens_vs_length.png]

With `--png`, also draws forward+backward tokens/s against T for every model
(log-log), the associative-scan Memoroids beside the sequential RNNs.
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from _common import machine, time_compiled

import memrl_eqx


def _fns(model):
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def forward(params, carry, xs, resets):
        model = eqx.combine(params, static)
        return jax.vmap(model)(carry, xs, resets)[1]

    def loss(params, carry, xs, resets):
        return jnp.mean(forward(params, carry, xs, resets) ** 2)

    return params, forward, jax.grad(loss)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=sorted(memrl_eqx.TORSOS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 1024])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--png", default=None, help="write a tokens/s-vs-T plot")
    args = parser.parse_args()
    curves: dict[str, list[tuple[int, float]]] = {}
    B, F = args.batch, args.features
    print(f"machine: {machine()}")
    print(
        "| model | T | forward tokens/s | fwd+bwd tokens/s | compile fwd (s) "
        "| compile fwd+bwd (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        model = memrl_eqx.make_torso(name, in_features=F, features=F, key=jr.key(0))
        params, forward, grad = _fns(model)
        for T in args.lengths:
            carry = jax.vmap(lambda _: model.init_carry())(jnp.arange(B))
            xs = jr.normal(jr.key(1), (B, T, F))
            resets = jr.bernoulli(jr.key(2), 0.01, (B, T))
            inputs = (params, carry, xs, resets)
            c_fwd, t_fwd = time_compiled(forward, *inputs, repeats=args.repeats)
            c_bwd, t_bwd = time_compiled(grad, *inputs, repeats=args.repeats)
            tokens = B * T
            curves.setdefault(name, []).append((T, tokens / t_bwd))
            print(
                f"| {name} | {T} | {tokens / t_fwd:,.0f} | {tokens / t_bwd:,.0f} "
                f"| {c_fwd:.2f} | {c_bwd:.2f} |",
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
    for name, points in sorted(curves.items()):
        lengths, rates = zip(*points)
        kind = type(
            memrl_eqx.make_torso(name, in_features=4, features=4, key=jr.key(0))
        )
        style = "-" if kind.__name__ == "Memoroid" else "--"
        ax.plot(lengths, rates, style, marker="o", label=f"{name} ({kind.__name__})")
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
