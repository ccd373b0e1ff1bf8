"""`DNCCell` (Graves et al. 2016): content addressing and allocation checked by
hand on tiny memories, one full step checked against the paper's equations written
out with loops, and the invariants over a few hundred steps."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

import memrl_eqx.nn as mnn
from memrl_eqx.nn._dnc import allocation_weighting, content_weighting, DNCCell

from ..helpers import tree_allclose


IN, F, HID, N, W, R = 3, 5, 6, 5, 3, 2
# float32 throughout; the hand-computed values are exact to 1e-7, and the cosine's
# eps (1e-6 inside the norms) moves them by less than 1e-6.
RTOL = ATOL = 1e-5


def test_content_weighting_by_hand():
    memory = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    keys = jnp.array([[1.0, 0.0], [0.0, -3.0]])
    strengths = jnp.array([2.0, 1.0])
    # Cosine similarities: key 0 -> (1, 0, 1/sqrt 2); key 1 -> (0, -1, -1/sqrt 2).
    e0 = [math.exp(2.0), 1.0, math.exp(math.sqrt(2.0))]
    e1 = [1.0, math.exp(-1.0), math.exp(-1 / math.sqrt(2.0))]
    expected = jnp.array([[v / sum(e0) for v in e0], [v / sum(e1) for v in e1]])
    assert jnp.allclose(expected[0], jnp.array([0.5910154, 0.0799852, 0.3289993]))
    got = content_weighting(memory, keys, strengths)
    assert tree_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_content_weighting_of_empty_memory_is_uniform_with_finite_gradient():
    memory = jnp.zeros((4, 3))
    keys = jnp.zeros((1, 3))
    got = content_weighting(memory, keys, jnp.ones(1))
    assert jnp.allclose(got, 0.25)
    grads = jax.grad(
        lambda m, k: content_weighting(m, k, jnp.ones(1))[0, 0], argnums=(0, 1)
    )(memory, keys)
    assert all(jnp.all(jnp.isfinite(g)) for g in grads)


def test_allocation_by_hand():
    usage = jnp.array([0.4, 0.1, 0.9, 0.6])
    # Free list (increasing usage): slots 1, 0, 3, 2.
    # a[1] = 0.9; a[0] = 0.6 * 0.1; a[3] = 0.4 * 0.1 * 0.4; a[2] = 0.1 * 0.1*0.4*0.6.
    expected = jnp.array([0.06, 0.9, 0.0024, 0.016])
    got = allocation_weighting(usage)
    assert tree_allclose(got, expected, rtol=RTOL, atol=1e-7)
    # The weights add up to 1 - prod(usage).
    assert jnp.allclose(jnp.sum(got), 1 - jnp.prod(usage))
    # Empty memory: everything goes to the first slot; full memory: nowhere.
    assert jnp.array_equal(allocation_weighting(jnp.zeros(3)), jnp.array([1.0, 0, 0]))
    assert jnp.array_equal(allocation_weighting(jnp.ones(3)), jnp.zeros(3))


def _reference_step(cell):
    """One DNC step, from the paper's equations, with explicit loops over slots and
    heads. The interface layout is the one `DNCCell` documents."""
    sigmoid = jax.nn.sigmoid
    oneplus = lambda v: 1 + jnp.log1p(jnp.exp(v))

    def cosine(u, v):
        eps = 1e-6
        return jnp.dot(u, v) / (
            jnp.sqrt(jnp.dot(u, u) + eps) * jnp.sqrt(jnp.dot(v, v) + eps)
        )

    def content(memory, key, strength):
        scores = jnp.stack([strength * cosine(key, memory[i]) for i in range(N)])
        return jnp.exp(scores) / jnp.sum(jnp.exp(scores))

    def step(state, x):
        h, c, memory, usage, link, prec, w_read, w_write, reads = state
        z = (
            cell.weight_x @ x
            + cell.weight_r @ reads.reshape(-1)
            + cell.weight_h @ h
            + cell.bias
        )
        zi, zf, zg, zo = jnp.split(z, 4)
        c = sigmoid(zf) * c + sigmoid(zi) * jnp.tanh(zg)
        h = sigmoid(zo) * jnp.tanh(c)
        xi = cell.weight_interface @ h + cell.bias_interface
        at = 0

        def take(n):
            nonlocal at
            at += n
            return xi[at - n : at]

        read_keys = take(R * W).reshape(R, W)
        read_strengths = oneplus(take(R))
        write_key = take(W)
        write_strength = oneplus(take(1)[0])
        erase = sigmoid(take(W))
        write_vector = take(W)
        free = sigmoid(take(R))
        alloc_gate = sigmoid(take(1)[0])
        write_gate = sigmoid(take(1)[0])
        modes = jax.nn.softmax(take(3 * R).reshape(R, 3), axis=-1)

        # Usage, with the previous write and read weightings.
        psi = jnp.ones(N)
        for i in range(R):
            psi = psi * (1 - free[i] * w_read[i])
        usage = (usage + w_write - usage * w_write) * psi
        # Allocation: walk the free list.
        order = jnp.argsort(usage)
        alloc, running = jnp.zeros(N), 1.0
        for j in range(N):
            slot = order[j]
            alloc = alloc.at[slot].set((1 - usage[slot]) * running)
            running = running * usage[slot]
        w_write = write_gate * (
            alloc_gate * alloc
            + (1 - alloc_gate) * content(memory, write_key, write_strength)
        )
        memory = memory * (1 - jnp.outer(w_write, erase)) + jnp.outer(
            w_write, write_vector
        )
        new_link = jnp.zeros((N, N))
        for i in range(N):
            for j in range(N):
                if i != j:
                    value = (1 - w_write[i] - w_write[j]) * link[i, j] + (
                        w_write[i] * prec[j]
                    )
                    new_link = new_link.at[i, j].set(value)
        link = new_link
        prec = (1 - jnp.sum(w_write)) * prec + w_write
        new_read, new_reads = [], []
        for i in range(R):
            fwd = link @ w_read[i]
            bwd = link.T @ w_read[i]
            cont = content(memory, read_keys[i], read_strengths[i])
            w = modes[i, 0] * bwd + modes[i, 1] * cont + modes[i, 2] * fwd
            new_read.append(w)
            new_reads.append(memory.T @ w)
        w_read, reads = jnp.stack(new_read), jnp.stack(new_reads)
        y = cell.weight_out @ jnp.concatenate([h, reads.reshape(-1)]) + cell.bias_out
        return (h, c, memory, usage, link, prec, w_read, w_write, reads), y

    return step


def _cell(key):
    return DNCCell(
        in_features=IN,
        features=F,
        hidden_dim=HID,
        memory_size=N,
        word_size=W,
        num_read_heads=R,
        key=key,
    )


def test_matches_reference_recurrence(getkey):
    cell = _cell(getkey())
    T = 14
    xs = 2 * jr.normal(getkey(), (T, IN))
    resets = jnp.zeros(T, bool).at[jnp.array([0, 10])].set(True)
    step = jax.jit(_reference_step(cell))
    init = tuple(cell.init_carry())
    state, expected = init, []
    for x, reset in zip(xs, resets):
        if reset:
            state = init
        state, y = step(state, x)
        expected.append(y)
    rnn = mnn.RNN(cell)
    carry, ys = eqx.filter_jit(rnn)(rnn.init_carry(), xs, resets)
    assert ys.shape == (T, F)
    assert tree_allclose(ys, jnp.stack(expected), rtol=RTOL, atol=ATOL)
    assert tree_allclose(tuple(carry), state, rtol=RTOL, atol=ATOL)


def test_invariants_and_finiteness_over_300_steps(getkey):
    cell = _cell(getkey())
    xs = 3 * jr.normal(getkey(), (300, IN))

    @eqx.filter_jit
    def run(cell, xs):
        def body(carry, x):
            carry, y = cell(carry, x)
            return carry, (carry, y)

        return jax.lax.scan(body, cell.init_carry(), xs)[1]

    carries, ys = run(cell, xs)
    tol = 1e-5
    assert jnp.all(jnp.isfinite(ys))
    assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(carries))
    assert jnp.all((carries.usage >= 0) & (carries.usage <= 1 + tol))
    for weights in (carries.write_weights, carries.read_weights, carries.precedence):
        assert jnp.all(weights >= 0)
        assert jnp.all(jnp.sum(weights, axis=-1) <= 1 + tol)
    link = carries.link
    assert jnp.all(link >= 0)
    assert jnp.all(jnp.diagonal(link, axis1=-2, axis2=-1) == 0)
    assert jnp.all(jnp.sum(link, axis=-1) <= 1 + tol)
    assert jnp.all(jnp.sum(link, axis=-2) <= 1 + tol)
    # The memory is actually used: something was written and read.
    assert jnp.max(jnp.abs(carries.memory[-1])) > 0
    assert jnp.max(jnp.abs(carries.read_vectors[-1])) > 0

    # Gradients through all 300 steps are finite.
    @eqx.filter_jit
    @eqx.filter_grad
    def grad(cell):
        _, ys = mnn.RNN(cell)(cell.init_carry(), xs, jnp.zeros(300, bool))
        return jnp.sum(ys[-1] ** 2)

    leaves = jax.tree.leaves(eqx.filter(grad(cell), eqx.is_inexact_array))
    assert all(jnp.all(jnp.isfinite(g)) for g in leaves)


@pytest.mark.parametrize("name", ["memory_size", "word_size", "num_read_heads"])
def test_bad_sizes(name, getkey):
    with pytest.raises(ValueError, match=name):
        DNCCell(in_features=IN, features=F, hidden_dim=HID, key=getkey(), **{name: 0})
