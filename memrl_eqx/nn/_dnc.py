"""`DNCCell`: the differentiable neural computer (Graves et al. 2016) as a step
cell."""

import itertools as it
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class DNCCarry(NamedTuple):
    """The state of a `DNCCell`; every field is zero at an episode start."""

    hidden: Float[Array, " hidden_dim"]
    """The controller LSTM's $h$."""
    cell: Float[Array, " hidden_dim"]
    """The controller LSTM's $c$."""
    memory: Float[Array, "memory_size word_size"]
    """$M$, one word per row."""
    usage: Float[Array, " memory_size"]
    """$u$, how much each slot is in use, in $[0, 1]$."""
    link: Float[Array, "memory_size memory_size"]
    """$L$, $L[i, j]$ the degree to which slot $i$ was written right after $j$."""
    precedence: Float[Array, " memory_size"]
    """$p$, the degree to which each slot was the last one written."""
    read_weights: Float[Array, "num_read_heads memory_size"]
    """$w^r$, one weighting per read head."""
    write_weights: Float[Array, " memory_size"]
    """$w^w$."""
    read_vectors: Float[Array, "num_read_heads word_size"]
    """$r$, the words read at the last step."""


def oneplus(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """$1 + \\log(1 + e^x)$: a strength in $[1, \\infty)$."""
    return 1 + jax.nn.softplus(x)


def _unit_interval(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """`x` clipped to [0, 1], with gradient exactly 1 on [0, 1] (ends included)."""
    inside = (x >= 0) & (x <= 1)
    return jnp.where(inside, x, jnp.clip(x, 0.0, 1.0))


def content_weighting(
    memory: Float[Array, "memory_size word_size"],
    keys: Float[Array, "num_keys word_size"],
    strengths: Float[Array, " num_keys"],
    eps: float = 1e-6,
) -> Float[Array, "num_keys memory_size"]:
    """Content-based addressing, one weighting per key:
    $\\mathrm{softmax}_i(\\beta\\, D(k, M_i))$ with the cosine similarity
    $D(k, M_i) = k \\cdot M_i / (\\|k\\|_\\epsilon \\|M_i\\|_\\epsilon)$, where
    $\\|v\\|_\\epsilon = \\sqrt{\\|v\\|^2 + \\epsilon}$ keeps it (and its gradient)
    finite for zero words and keys."""
    memory_norm = jnp.sqrt(jnp.sum(memory**2, axis=-1) + eps)
    key_norm = jnp.sqrt(jnp.sum(keys**2, axis=-1) + eps)
    similarity = (keys @ memory.T) / (key_norm[:, None] * memory_norm[None, :])
    return jax.nn.softmax(strengths[:, None] * similarity, axis=-1)


def allocation_weighting(
    usage: Float[Array, " memory_size"],
) -> Float[Array, " memory_size"]:
    """Usage-based allocation: with $\\phi$ the slots sorted by increasing usage,
    $a[\\phi_j] = (1 - u[\\phi_j]) \\prod_{i < j} u[\\phi_i]$. Non-negative and
    summing to at most 1 for usage in $[0, 1]$. (The sort order carries no
    gradient; the values do.)"""
    order = jnp.argsort(lax.stop_gradient(usage))
    sorted_usage = usage[order]
    before = jnp.cumprod(jnp.concatenate([jnp.ones((1,), usage.dtype), sorted_usage]))
    allocation_sorted = (1 - sorted_usage) * before[:-1]
    return jnp.zeros_like(usage).at[order].set(allocation_sorted)


class DNCCell(AbstractCell):
    """A differentiable neural computer: an LSTM controller with an external
    memory of `memory_size` words of width `word_size`, `num_read_heads` read
    heads and one write head.

    Per step (Graves et al. 2016, Methods):

    1. Controller: an LSTM on $[x_t; r_{t-1}]$ gives $h_t$; the interface
       vector $\\xi_t = W_\\xi h_t + b_\\xi$ splits into read keys $k^r$, read
       strengths $\\beta^r = \\mathrm{oneplus}$, write key $k^w$, write strength
       $\\beta^w$, erase vector $e = \\sigma$, write vector $v$, free gates
       $f = \\sigma$, allocation gate $g^a = \\sigma$, write gate $g^w = \\sigma$
       and read modes $\\pi = \\mathrm{softmax}$ over (backward, content,
       forward), in that order.
    2. Usage: $\\psi = \\prod_i (1 - f_i w^{r,i}_{t-1})$,
       $u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} \\odot w^w_{t-1}) \\odot \\psi$.
    3. Write weighting: $w^w_t = g^w (g^a a_t + (1 - g^a) c^w_t)$ with the
       allocation $a_t$ of $u_t$ (`allocation_weighting`) and the content
       weighting $c^w_t$ of $k^w, \\beta^w$ on $M_{t-1}$ (`content_weighting`).
    4. Memory: $M_t = M_{t-1} \\odot (1 - w^w_t e^\\top) + w^w_t v^\\top$.
    5. Temporal links: $L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j] +
       w^w_t[i] p_{t-1}[j]$, zero diagonal;
       $p_t = (1 - \\sum_i w^w_t[i]) p_{t-1} + w^w_t$.
    6. Read weightings: $w^{r,i}_t = \\pi_1 b^i + \\pi_2 c^{r,i} + \\pi_3 f^i$ with
       $f^i = L_t w^{r,i}_{t-1}$, $b^i = L_t^\\top w^{r,i}_{t-1}$ and the content
       weighting $c^{r,i}$ of $k^{r,i}, \\beta^{r,i}$ on $M_t$; reads
       $r^i_t = M_t^\\top w^{r,i}_t$.
    7. Output: $y_t = W_{out} [h_t; r_t] + b_{out}$, shape `(features,)`.

    Invariants (for a carry reached from `init_carry()`): weightings are
    non-negative and sum to at most 1, usage stays in $[0, 1]$, link rows and
    columns sum to at most 1. A carry given to `recurrence` has its usage,
    links, precedence and weightings clipped to $[0, 1]$ first (the identity on
    any carry that obeys the invariants), so that an arbitrary carry cannot make
    the memory grow without bound. The carry is a `DNCCarry` (controller `hidden`
    and `cell`, `memory`, `usage`, `link`, `precedence`, `read_weights`,
    `write_weights`, `read_vectors`), all zeros at an episode start. The
    controller's input term $W_x x_t + b$ is the input projection.

    **Arguments:** `in_features`, `features` (output size), `hidden_dim`
    (controller size), `memory_size` (default 16), `word_size` (default 16),
    `num_read_heads` (default 1), `eps` (of the cosine similarity, default
    1e-6), `key` (keyword only). The controller is initialised as `LSTMCell`,
    the interface and output maps LeCun normal with zero biases.
    """

    weight_x: Float[Array, "gates in_features"]
    weight_r: Float[Array, "gates reads"]
    weight_h: Float[Array, "gates hidden_dim"]
    bias: Float[Array, " gates"]
    weight_interface: Float[Array, "interface hidden_dim"]
    bias_interface: Float[Array, " interface"]
    weight_out: Float[Array, "features controller_out"]
    bias_out: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    memory_size: int = eqx.field(static=True)
    word_size: int = eqx.field(static=True)
    num_read_heads: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        hidden_dim: int,
        memory_size: int = 16,
        word_size: int = 16,
        num_read_heads: int = 1,
        eps: float = 1e-6,
        key: PRNGKeyArray,
    ):
        for name, value in [
            ("hidden_dim", hidden_dim),
            ("memory_size", memory_size),
            ("word_size", word_size),
            ("num_read_heads", num_read_heads),
        ]:
            if value < 1:
                raise ValueError(f"DNCCell: {name} must be at least 1; got {value}.")
        if not eps > 0:
            raise ValueError(f"DNCCell: eps must be positive; got eps={eps}.")
        k_x, k_r, k_h, k_b, k_i, k_o = jr.split(key, 6)
        reads = num_read_heads * word_size
        interface = reads + 3 * word_size + 5 * num_read_heads + 3
        bound = 1 / math.sqrt(hidden_dim)
        uniform = lambda k, shape: jr.uniform(k, shape, minval=-bound, maxval=bound)
        self.weight_x = uniform(k_x, (4 * hidden_dim, in_features))
        self.weight_r = uniform(k_r, (4 * hidden_dim, reads))
        self.weight_h = uniform(k_h, (4 * hidden_dim, hidden_dim))
        self.bias = uniform(k_b, (4 * hidden_dim,))
        self.weight_interface = jr.normal(k_i, (interface, hidden_dim)) * bound
        self.bias_interface = jnp.zeros((interface,))
        self.weight_out = jr.normal(k_o, (features, hidden_dim + reads)) / math.sqrt(
            hidden_dim + reads
        )
        self.bias_out = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.hidden_dim = hidden_dim
        self.memory_size = memory_size
        self.word_size = word_size
        self.num_read_heads = num_read_heads
        self.eps = eps

    def init_carry(self) -> DNCCarry:
        n, w, r = self.memory_size, self.word_size, self.num_read_heads
        zeros = lambda *shape: jnp.zeros(shape, self.weight_h.dtype)
        return DNCCarry(
            hidden=zeros(self.hidden_dim),
            cell=zeros(self.hidden_dim),
            memory=zeros(n, w),
            usage=zeros(n),
            link=zeros(n, n),
            precedence=zeros(n),
            read_weights=zeros(r, n),
            write_weights=zeros(n),
            read_vectors=zeros(r, w),
        )

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> Float[Array, " gates"]:
        return self.weight_x @ x + self.bias

    def split_interface(self, xi: Float[Array, " interface"]) -> dict[str, Array]:
        """Split an interface vector $\\xi$ into the named, activated parts
        (the layout of step 1 above, in that order)."""
        r, w = self.num_read_heads, self.word_size
        sizes = [r * w, r, w, 1, w, w, r, 1, 1, 3 * r]
        parts = jnp.split(xi, list(it.accumulate(sizes))[:-1])
        keys, strengths, wkey, wstrength, erase, wvec, free, ga, gw, modes = parts
        return dict(
            read_keys=keys.reshape(r, w),
            read_strengths=oneplus(strengths),
            write_key=wkey,
            write_strength=oneplus(wstrength),
            erase=jax.nn.sigmoid(erase),
            write_vector=wvec,
            free_gates=jax.nn.sigmoid(free),
            allocation_gate=jax.nn.sigmoid(ga[0]),
            write_gate=jax.nn.sigmoid(gw[0]),
            read_modes=jax.nn.softmax(modes.reshape(r, 3), axis=-1),
        )

    @jax.named_scope("memrl_eqx.nn.DNCCell")
    def recurrence(
        self, carry: DNCCarry, u: Float[Array, " gates"]
    ) -> tuple[DNCCarry, Float[Array, " features"]]:
        # A carry from `init_carry` keeps every weighting, the usage and the links
        # in [0, 1]; project a carry that breaks this (perturbed, or made up) back
        # into that range, so that it cannot make the memory blow up. On a valid
        # carry this is the identity, gradients included.
        carry = carry._replace(
            usage=_unit_interval(carry.usage),
            link=_unit_interval(carry.link),
            precedence=_unit_interval(carry.precedence),
            read_weights=_unit_interval(carry.read_weights),
            write_weights=_unit_interval(carry.write_weights),
        )

        # 1. Controller and interface.
        gates = (
            u
            + self.weight_r @ carry.read_vectors.reshape(-1)
            + self.weight_h @ carry.hidden
        )
        i, f, g, o = jnp.split(gates, 4)
        cell = jax.nn.sigmoid(f) * carry.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        hidden = jax.nn.sigmoid(o) * jnp.tanh(cell)
        p = self.split_interface(self.weight_interface @ hidden + self.bias_interface)

        # 2. Usage.
        retention = jnp.prod(1 - p["free_gates"][:, None] * carry.read_weights, axis=0)
        ww_prev = carry.write_weights
        usage = (carry.usage + ww_prev - carry.usage * ww_prev) * retention

        # 3. Write weighting.
        allocation = allocation_weighting(usage)
        write_content = content_weighting(
            carry.memory, p["write_key"][None], p["write_strength"], self.eps
        )[0]
        ga = p["allocation_gate"]
        ww = p["write_gate"] * (ga * allocation + (1 - ga) * write_content)

        # 4. Memory.
        memory = carry.memory * (1 - ww[:, None] * p["erase"][None, :]) + (
            ww[:, None] * p["write_vector"][None, :]
        )

        # 5. Temporal links and precedence.
        link = (1 - ww[:, None] - ww[None, :]) * carry.link + (
            ww[:, None] * carry.precedence[None, :]
        )
        link = link * (1 - jnp.eye(self.memory_size, dtype=link.dtype))
        precedence = (1 - jnp.sum(ww)) * carry.precedence + ww

        # 6. Read weightings and reads.
        forward = carry.read_weights @ link.T
        backward = carry.read_weights @ link
        read_content = content_weighting(
            memory, p["read_keys"], p["read_strengths"], self.eps
        )
        modes = p["read_modes"]
        read_weights = (
            modes[:, 0:1] * backward
            + modes[:, 1:2] * read_content
            + modes[:, 2:3] * forward
        )
        read_vectors = read_weights @ memory

        # 7. Output.
        y = (
            self.weight_out @ jnp.concatenate([hidden, read_vectors.reshape(-1)])
            + self.bias_out
        )
        new_carry = DNCCarry(
            hidden=hidden,
            cell=cell,
            memory=memory,
            usage=usage,
            link=link,
            precedence=precedence,
            read_weights=read_weights,
            write_weights=ww,
            read_vectors=read_vectors,
        )
        return new_carry, y
