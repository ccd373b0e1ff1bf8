"""Issue 20, lever 2: a GRU whose weight gradients leave the backward loop.

An experiment, not part of the library (measured and not adopted; see
RESULTS.md, "PPO speed (issue 20)"). Reverse-mode through `lax.scan` of
`GRUCell.recurrence` stores eleven per-step intermediates and accumulates
`dW_hh`, `db_hh` in the backward loop (a `[3F, F]` outer product and add per
step). `gru_sequence` below stores only the outputs, recomputes the gates of all
steps at once before its backward loop, keeps only the `dh` chain inside it (one
product per step), and forms `dW_hh` after it as one product over all steps
and sequences, as cuDNN does.

A `custom_vjp` under `vmap` runs its backward per sequence and sums the
per-sequence weight cotangents (a batched product and a reduction, with the
inputs transposed batch-major to time-major and back): that first version was
1.35x slower than autodiff. Here the forward and backward cores are
`jax.custom_batching.custom_vmap` functions whose batching rule runs one
time-major loop over the whole batch.

    python benchmarks/gru_backward.py [--sizes 8x128 32x1024] [--repeats 20]

prints the forward and forward+backward time of `RNN(GRUCell)` (autodiff), of
`gru_sequence` (plus the same input projection) and of `RNN` over the GRU cell
as it was before issue 20 (`OneArrayGRUCell`: the input projection one
`(3 * features,)` array that every step slices; lever 4, kept), wall clock and
CPU time of this process (the median and the best of `--repeats`
interleaved calls).
"""

import argparse
import statistics
import time

import jax
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def _gates(weight_hh, bias_hh, hs, us):
    """`r, z, n` and the hidden part of `n`'s pre-activation, from the carries
    after reset `hs` (..., F) and the input projections `us` (..., 3F)."""
    hh = hs @ weight_hh.T + bias_hh.reshape((1,) * (hs.ndim - 1) + (-1,))
    u_r, u_z, u_n = jnp.split(us, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hh, 3, axis=-1)
    r = jax.nn.sigmoid(u_r + h_r)
    z = jax.nn.sigmoid(u_z + h_z)
    n = jnp.tanh(u_n + r * h_n)
    return r, z, n, h_n


def _forward_batched(weight_hh, bias_hh, h0, us, resets):
    """Sequences `(B, T, ...)`: `(h_T (B, F), ys (B, T, F))`, looping time-major."""
    features = weight_hh.shape[1]
    # The weight transposed once, outside the loop (a transposed operand costs
    # the per-step product ~2x on the CPU).
    weight_t = lax.optimization_barrier(weight_hh.T)

    def step(h, inputs):
        u_r, u_z, u_n, reset = inputs
        h = jnp.where(reset[:, None], jnp.zeros_like(h), h)
        hh = h @ weight_t + bias_hh[None]
        r = jax.nn.sigmoid(u_r + hh[:, :features])
        z = jax.nn.sigmoid(u_z + hh[:, features : 2 * features])
        n = jnp.tanh(u_n + r * hh[:, 2 * features :])
        h = (1 - z) * n + z * h
        return h, h

    # The three gates' inputs as three arrays: slices of one per-step slice
    # defeat the vectorisation of the fused gate arithmetic (2x slower).
    time_major = lambda x: jnp.swapaxes(x, 0, 1)
    inputs = (*map(time_major, jnp.split(us, 3, axis=-1)), time_major(resets))
    h_last, ys = lax.scan(step, h0, inputs)
    return h_last, time_major(ys)


def _backward_batched(weight_hh, bias_hh, h0, us, resets, ys, d_last, d_ys):
    """The cotangents of `(weight_hh, bias_hh, h0, us)` for sequences `(B, T, ...)`,
    the weights' summed over the batch."""
    time_major = lambda x: jnp.swapaxes(x, 0, 1)
    us, resets, ys, d_ys = map(time_major, (us, resets, ys, d_ys))
    # Every step's carry after its reset, and all the gates, at once: (T, B, .).
    previous = jnp.concatenate([h0[None], ys[:-1]])
    hs = jnp.where(resets[..., None], jnp.zeros_like(previous), previous)
    r, z, n, h_n = _gates(weight_hh, bias_hh, hs, us)
    # Per-step factors of the dh chain, none of which depends on dh.
    dn_factor = (1 - z) * (1 - n * n)  # d(pre-activation of n) / dh
    dz_factor = (hs - n) * z * (1 - z)  # d(pre-activation of z) / dh
    dr_factor = h_n * r * (1 - r)  # d(pre-activation of r) / d(pre-act. of n)

    def step(dh, inputs):
        d_y, reset, fn, fz, fr, r_t, z_t = inputs
        dh = dh + d_y
        da_n = dh * fn
        da_r = da_n * fr
        da_z = dh * fz
        d_hh = jnp.concatenate([da_r, da_z, da_n * r_t], axis=-1)
        d_h = dh * z_t + d_hh @ weight_hh
        d_h = jnp.where(reset[:, None], jnp.zeros_like(d_h), d_h)
        return d_h, (da_r, da_z, da_n)

    inputs = (d_ys, resets, dn_factor, dz_factor, dr_factor, r, z)
    d_h0, (da_r, da_z, da_n) = lax.scan(step, d_last, inputs, reverse=True)
    d_us = jnp.concatenate([da_r, da_z, da_n], axis=-1)
    d_hh = jnp.concatenate([da_r, da_z, da_n * r], axis=-1)
    gates, features = weight_hh.shape
    d_weight = d_hh.reshape(-1, gates).T @ hs.reshape(-1, features)
    d_bias = jnp.sum(d_hh, axis=(0, 1))
    return d_weight, d_bias, d_h0, time_major(d_us)


def _unbatched(batched, num_outputs_summed):
    """`batched` on one sequence (a batch of one), its first
    `num_outputs_summed` outputs (the weights') taken as they are."""

    def fn(weight_hh, bias_hh, *per_sequence):
        outs = batched(weight_hh, bias_hh, *(x[None] for x in per_sequence))
        return tuple(
            out if i < num_outputs_summed else out[0] for i, out in enumerate(outs)
        )

    return fn


def _with_batching(batched, num_outputs_summed):
    """`batched`'s per-sequence function whose `vmap` over the sequences (the
    weights unbatched) is `batched` itself; a vmap over the weights too (a
    vmap over seeds inside one over sequences) vmaps the per-sequence form."""
    unbatched = _unbatched(batched, num_outputs_summed)
    fn = jax.custom_batching.custom_vmap(unbatched)

    @fn.def_vmap
    def rule(axis_size, in_batched, weight_hh, bias_hh, *per_sequence):
        if in_batched[0] or in_batched[1]:
            broadcast = lambda x, b: (
                x if b else jnp.broadcast_to(x, (axis_size,) + x.shape)
            )
            args = [
                broadcast(x, b)
                for x, b in zip((weight_hh, bias_hh, *per_sequence), in_batched)
            ]
            outs = jax.vmap(unbatched)(*args)
            return outs, tuple(True for _ in outs)
        per_sequence = [
            x if b else jnp.broadcast_to(x, (axis_size,) + x.shape)
            for x, b in zip(per_sequence, in_batched[2:])
        ]
        outs = batched(weight_hh, bias_hh, *per_sequence)
        return outs, tuple(i >= num_outputs_summed for i in range(len(outs)))

    return fn


_forward = _with_batching(_forward_batched, 0)
_backward = _with_batching(_backward_batched, 2)


@jax.custom_vjp
def gru_sequence(
    weight_hh: Float[Array, "gates features"],
    bias_hh: Float[Array, " gates"],
    h0: Float[Array, " features"],
    us: Float[Array, "time gates"],
    resets: Bool[Array, " time"],
) -> tuple[Float[Array, " features"], Float[Array, "time features"]]:
    """`GRUCell.recurrence` over a sequence, the carry zeroed where `resets`.

    **Arguments:** `weight_hh` `(3F, F)`, `bias_hh` `(3F,)`, `h0` `(F,)` the
    carry before step 0, `us` `(T, 3F)` the input projections
    (`GRUCell.input_projection` of every step), `resets` `(T,)` booleans.

    **Returns:** `(h_T, ys)`, the last carry `(F,)` and the outputs `(T, F)`,
    the values of `lax.scan` over the cell's step. Under `jax.vmap` over the
    sequences (not the weights) it runs as one batched loop over time whose
    backward pass sums the weights' gradients over the batch in one product;
    the gradient is the scan's to float32 rounding (summed in another order)."""
    return _forward(weight_hh, bias_hh, h0, us, resets)


def _fwd(weight_hh, bias_hh, h0, us, resets):
    h_last, ys = _forward(weight_hh, bias_hh, h0, us, resets)
    return (h_last, ys), (weight_hh, bias_hh, h0, us, resets, ys)


def _bwd(residuals, cotangents):
    d_last, d_ys = cotangents
    return (*_backward(*residuals, d_last, d_ys), None)


gru_sequence.defvjp(_fwd, _bwd)


# ------------------------------------------------------------------ timing
def _one_array_cell():
    from memrl_eqx.nn import GRUCell

    class OneArrayGRUCell(GRUCell):
        """`GRUCell` before issue 20: one projection array, sliced every step."""

        def input_projection(self, x):
            return self.weight_ih @ x + self.bias_ih

        def recurrence(self, carry, u):
            return super().recurrence(carry, tuple(jnp.split(u, 3)))

    return OneArrayGRUCell


def _cases(batch, length, features=64):
    import equinox as eqx
    import jax.random as jr

    from memrl_eqx.nn import GRUCell, RNN

    rnn = RNN(GRUCell(in_features=features, features=features, key=jr.key(0)))
    params, static = eqx.partition(rnn, eqx.is_array)
    old_cell = _one_array_cell()(in_features=features, features=features, key=jr.key(0))
    old_params, old_static = eqx.partition(RNN(old_cell), eqx.is_array)
    old_structure = jax.tree.structure(old_params)
    xs = jr.normal(jr.key(1), (batch, length, features))
    resets = jr.bernoulli(jr.key(2), 0.01, (batch, length))
    h0 = jnp.zeros((batch, features))

    def autodiff(params):
        model = eqx.combine(params, static)
        return jnp.mean(jax.vmap(model)(h0, xs, resets)[1] ** 2)

    def one_array(params):
        # The same arrays, in the old cell (same fields, another class).
        params = jax.tree.unflatten(old_structure, jax.tree.leaves(params))
        model = eqx.combine(params, old_static)
        return jnp.mean(jax.vmap(model)(h0, xs, resets)[1] ** 2)

    def custom(params):
        cell = eqx.combine(params, static).cell
        us = jnp.concatenate(jax.vmap(jax.vmap(cell.input_projection))(xs), -1)
        run = jax.vmap(gru_sequence, in_axes=(None, None, 0, 0, 0))
        return jnp.mean(run(cell.weight_hh, cell.bias_hh, h0, us, resets)[1] ** 2)

    fns = {
        "autodiff fwd": autodiff,
        "custom fwd": custom,
        "one-array cell fwd": one_array,
        "autodiff fwd+bwd": jax.grad(autodiff),
        "custom fwd+bwd": jax.grad(custom),
        "one-array cell fwd+bwd": jax.grad(one_array),
    }
    compiled = {k: jax.jit(f).lower(params).compile() for k, f in fns.items()}
    return compiled, params


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["8x128", "32x1024"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print("| batch x T | case | wall (ms) | CPU (ms) | CPU, best (ms) |")
    print("| --- | --- | --- | --- | --- |")
    for size in args.sizes:
        batch, length = map(int, size.split("x"))
        compiled, params = _cases(batch, length)
        grads = [compiled[k](params) for k in ("autodiff fwd+bwd", "custom fwd+bwd")]
        diff = max(
            float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]))
        )
        walls = {k: [] for k in compiled}
        cpus = {k: [] for k in compiled}
        for _ in range(args.repeats):
            for k, f in compiled.items():
                cpu, wall = time.process_time(), time.perf_counter()
                jax.block_until_ready(f(params))
                walls[k].append(time.perf_counter() - wall)
                cpus[k].append(time.process_time() - cpu)
        for k in compiled:
            wall, cpu = statistics.median(walls[k]), statistics.median(cpus[k])
            best = 1e3 * min(cpus[k])
            print(f"| {size} | {k} | {1e3 * wall:.2f} | {1e3 * cpu:.2f} | {best:.2f} |")
        print(f"| {size} | max gradient difference | {diff:.1e} | | |", flush=True)


if __name__ == "__main__":
    main()
