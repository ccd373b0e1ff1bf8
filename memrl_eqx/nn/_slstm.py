"""`sLSTMCell`: the scalar LSTM of xLSTM (Beck et al. 2024)."""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._cell import AbstractCell


class sLSTMCarry(NamedTuple):
    """The state of an `sLSTMCell`; every field is zero at an episode start."""

    cell: Float[Array, " hidden_dim"]
    """$c$, the cell state."""
    normalizer: Float[Array, " hidden_dim"]
    """$n$, the normaliser state (a running sum of stabilised input gates)."""
    max_log: Float[Array, " hidden_dim"]
    """$m$, the stabiliser: a running maximum of the log gates."""
    hidden: Float[Array, " hidden_dim"]
    """$h$, the hidden state fed back through the recurrent weights."""
    conv_window: Float[Array, "window hidden_dim"]
    """The last `conv_kernel_size - 1` projected inputs, oldest first (shape
    `(0, hidden_dim)` without the causal convolution)."""


class sLSTMCell(AbstractCell):
    """The sLSTM: an LSTM with exponential input gates, a normaliser state, a
    stabiliser, and block-diagonal (per-head) recurrent weights.

    Per step, with $a_t = W_{in} x_t + b_{in}$ (width `hidden_dim`) and
    $\\tilde a_t = \\mathrm{silu}(\\mathrm{conv}(a_{t-K+1..t}))$ (a depthwise causal
    convolution of kernel size $K$ over the projected inputs; $\\tilde a = a$
    without it), the gate pre-activations are
    $\\tilde\\imath, \\tilde f = W_{i,f} \\tilde a_t + R_{i,f} h_{t-1} + b_{i,f}$ and
    $\\tilde z, \\tilde o = W_{z,o} a_t + R_{z,o} h_{t-1} + b_{z,o}$, where every
    $W$ and $R$ is block-diagonal with `num_heads` blocks. Then, stabilised:

    - $m_t = \\max(\\log\\sigma(\\tilde f) + m_{t-1}, \\tilde\\imath)$, or
      $m_t = \\tilde\\imath$ where $n_{t-1} = 0$ (nothing stored yet, as at an
      episode start; elementwise);
    - $i' = \\min(e^{\\tilde\\imath - m_t}, 1)$,
      $f' = \\min(e^{\\log\\sigma(\\tilde f) + m_{t-1} - m_t}, 1)$;
    - $c_t = f' c_{t-1} + i' \\tanh\\tilde z$, $n_t = f' n_{t-1} + i'$,
      $h_t = \\sigma(\\tilde o) \\odot c_t / \\max(n_t, \\epsilon)$;
    - $y_t = W_{out}\\,\\mathrm{MultiHeadLayerNorm}(h_t) + b_{out}$.

    The stabilised $c/n$ equals the unstabilised ratio with $i = e^{\\tilde\\imath}$,
    $f = \\sigma(\\tilde f)$, while no exponential ever exceeds 1, so long
    sequences stay finite in float32. The carry is an `sLSTMCarry`
    `(cell, normalizer, max_log, hidden, conv_window)`, all zeros at an episode
    start; the convolution's window of previous inputs lives in the carry, so
    stepping one step at a time is exact and the window is cleared at every
    reset (the convolution never sees the previous episode). The output has
    shape `(features,)`.

    The input-only work ($a_t$, and the $z, o$ input terms; all four input terms
    without the convolution) is the input projection.

    **Arguments:** `in_features`, `features` (output size), `hidden_dim`
    (state size, divisible by `num_heads`), `num_heads` (default 4),
    `use_causal_conv` (default `True`), `conv_kernel_size` (default 4), `eps`
    (the floor of the normaliser, default 1e-6), `key` (keyword only).

    Initialisation (as in xLSTM): $R = 0$; the forget bias of unit $j$ of each
    head is $5 - 12\\,(j / (d - 1))^{0.3}$ ($d$ the head size; the "power-law"
    spread from slow to fast forgetting), the other biases zero; the
    block-diagonal input weights are normal with standard deviation
    $\\sqrt{2 / (5 \\cdot \\text{hidden\\_dim})}$; $W_{in}$ and $W_{out}$ are
    LeCun normal with zero biases; the convolution is uniform in
    $\\pm 1/\\sqrt{K}$; the layer norm has unit scale, no bias and
    $\\epsilon = 10^{-5}$.
    """

    weight_in: Float[Array, "hidden_dim in_features"]
    bias_in: Float[Array, " hidden_dim"]
    conv_weight: Float[Array, "kernel hidden_dim"]
    conv_bias: Float[Array, " hidden_dim"]
    gate_weight: Float[Array, "4 heads head_dim head_dim"]
    recurrent_weight: Float[Array, "4 heads head_dim head_dim"]
    gate_bias: Float[Array, "4 hidden_dim"]
    norm_weight: Float[Array, " hidden_dim"]
    weight_out: Float[Array, "features hidden_dim"]
    bias_out: Float[Array, " features"]
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    hidden_dim: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    use_causal_conv: bool = eqx.field(static=True)
    conv_kernel_size: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        features: int,
        hidden_dim: int,
        num_heads: int = 4,
        use_causal_conv: bool = True,
        conv_kernel_size: int = 4,
        eps: float = 1e-6,
        key: PRNGKeyArray,
    ):
        if num_heads < 1 or hidden_dim % num_heads != 0:
            raise ValueError(
                f"sLSTMCell: hidden_dim={hidden_dim} must be divisible by "
                f"num_heads={num_heads}."
            )
        if conv_kernel_size < 1:
            raise ValueError(
                f"sLSTMCell: conv_kernel_size must be at least 1; got "
                f"conv_kernel_size={conv_kernel_size}."
            )
        if not eps > 0:
            raise ValueError(f"sLSTMCell: eps must be positive; got eps={eps}.")
        k_in, k_conv, k_convb, k_gate, k_out = jr.split(key, 5)
        head_dim = hidden_dim // num_heads
        self.weight_in = jr.normal(k_in, (hidden_dim, in_features)) / math.sqrt(
            in_features
        )
        self.bias_in = jnp.zeros((hidden_dim,))
        bound = 1 / math.sqrt(conv_kernel_size)
        self.conv_weight = jr.uniform(
            k_conv, (conv_kernel_size, hidden_dim), minval=-bound, maxval=bound
        )
        self.conv_bias = jr.uniform(k_convb, (hidden_dim,), minval=-bound, maxval=bound)
        std = math.sqrt(2 / (5 * hidden_dim))
        self.gate_weight = std * jr.normal(k_gate, (4, num_heads, head_dim, head_dim))
        self.recurrent_weight = jnp.zeros((4, num_heads, head_dim, head_dim))
        ratio = jnp.arange(head_dim) / max(head_dim - 1, 1)
        forget_bias = jnp.tile(5.0 - 12.0 * ratio**0.3, num_heads)
        self.gate_bias = jnp.zeros((4, hidden_dim)).at[1].set(forget_bias)
        self.norm_weight = jnp.ones((hidden_dim,))
        self.weight_out = jr.normal(k_out, (features, hidden_dim)) / math.sqrt(
            hidden_dim
        )
        self.bias_out = jnp.zeros((features,))
        self.in_features = in_features
        self.features = features
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.use_causal_conv = use_causal_conv
        self.conv_kernel_size = conv_kernel_size
        self.eps = eps

    def _blockdiag(
        self,
        weight: Float[Array, "gates heads head_dim head_dim"],
        v: Float[Array, " hidden_dim"],
    ) -> Float[Array, "gates hidden_dim"]:
        """Apply per-gate block-diagonal matrices (one block per head) to `v`."""
        blocks = v.reshape(self.num_heads, -1)
        out = jnp.einsum("ghij,hj->ghi", weight, blocks)
        return out.reshape(weight.shape[0], self.hidden_dim)

    def init_carry(self) -> sLSTMCarry:
        zeros = jnp.zeros((self.hidden_dim,), self.weight_in.dtype)
        window = self.conv_kernel_size - 1 if self.use_causal_conv else 0
        return sLSTMCarry(
            cell=zeros,
            normalizer=zeros,
            max_log=zeros,
            hidden=zeros,
            conv_window=jnp.zeros((window, self.hidden_dim), self.weight_in.dtype),
        )

    def input_projection(
        self, x: Float[Array, " in_features"]
    ) -> tuple[Float[Array, " hidden_dim"], Float[Array, "gates hidden_dim"]]:
        """`(a, w)`: the projected input $a$ and the input terms of the gates that
        do not need the convolution: rows `(z, o)` with the convolution, rows
        `(i, f, z, o)` without it."""
        a = self.weight_in @ x + self.bias_in
        if self.use_causal_conv:
            return a, self._blockdiag(self.gate_weight[2:], a)
        return a, self._blockdiag(self.gate_weight, a)

    @jax.named_scope("memrl_eqx.nn.sLSTMCell")
    def recurrence(
        self,
        carry: sLSTMCarry,
        u: tuple[Float[Array, " hidden_dim"], Float[Array, "gates hidden_dim"]],
    ) -> tuple[sLSTMCarry, Float[Array, " features"]]:
        a, w = u
        if self.use_causal_conv:
            window = jnp.concatenate([carry.conv_window, a[None]])
            conv = jnp.sum(self.conv_weight * window, axis=0) + self.conv_bias
            w_if = self._blockdiag(self.gate_weight[:2], jax.nn.silu(conv))
            w = jnp.concatenate([w_if, w])
            new_window = window[1:]
        else:
            new_window = carry.conv_window
        pre = w + self._blockdiag(self.recurrent_weight, carry.hidden) + self.gate_bias
        i_tilde, f_tilde, z_tilde, o_tilde = pre
        log_f_plus_m = jax.nn.log_sigmoid(f_tilde) + carry.max_log
        m = jnp.where(
            carry.normalizer == 0, i_tilde, jnp.maximum(log_f_plus_m, i_tilde)
        )
        # min(e^x, 1) as e^min(x, 0): equal, and no overflow in the exponent.
        i_gate = jnp.exp(jnp.minimum(i_tilde - m, 0.0))
        f_gate = jnp.exp(jnp.minimum(log_f_plus_m - m, 0.0))
        c = f_gate * carry.cell + i_gate * jnp.tanh(z_tilde)
        n = f_gate * carry.normalizer + i_gate
        h = jax.nn.sigmoid(o_tilde) * c / jnp.maximum(n, self.eps)
        heads = h.reshape(self.num_heads, -1)
        mean = jnp.mean(heads, axis=-1, keepdims=True)
        var = jnp.var(heads, axis=-1, keepdims=True)
        normed = ((heads - mean) * jax.lax.rsqrt(var + 1e-5)).reshape(-1)
        y = self.weight_out @ (normed * self.norm_weight) + self.bias_out
        new_carry = sLSTMCarry(
            cell=c, normalizer=n, max_log=m, hidden=h, conv_window=new_window
        )
        return new_carry, y
