"""`MoE`: a mixture of experts routed per step by a `TopKRouter`, with the
router's load-balancing and z-losses accounted for in the carry."""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._custom_types import Carry
from ._auxiliary import AbstractAuxiliaryStatistics
from ._linear import Linear
from ._misc import check_sequence
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


class RouterStatistics(AbstractAuxiliaryStatistics):
    """A `TopKRouter`'s running sums, kept in `MoE`'s carry.

    - `assignments`: shape `(num_experts,)`, how many times each expert was among
      a step's top k (so it sums to `k * count`);
    - `probabilities`: shape `(num_experts,)`, the sum of the router's softmax
      probabilities over the steps;
    - `z`: the sum over the steps of $\\operatorname{logsumexp}(\\text{logits})^2$;
    - `count`: the number of steps;
    - `balance_coefficient`, `z_loss_coefficient`: the router's weights of the
      two losses below (static).

    `loss()` is
    `balance_coefficient * E * sum_e f_e P_e + z_loss_coefficient * mean(z)` with
    `f_e = assignments_e / sum(assignments)` (the fraction of assignments routed to
    expert `e`, held constant: no gradient flows through the counts),
    `P_e = probabilities_e / count` (the mean router probability) and `E` the number
    of experts: the load-balancing loss of the Switch Transformer (Fedus et al.
    2021), which is smallest (`balance_coefficient`) when the load is uniform, and
    the router z-loss of ST-MoE (Zoph et al. 2022), which keeps the logits small.
    Empty statistics (`count == 0`) give a loss of 0.
    """

    assignments: Float[Array, " num_experts"]
    probabilities: Float[Array, " num_experts"]
    z: Float[Array, ""]
    count: Float[Array, ""]
    balance_coefficient: float = eqx.field(static=True)
    z_loss_coefficient: float = eqx.field(static=True)

    def load(self) -> Float[Array, " num_experts"]:
        """The fraction of assignments routed to each expert, $f_e$ (of pooled
        statistics; zero if there are none)."""
        total = jnp.sum(self.assignments)
        return self.assignments / jnp.maximum(total, jnp.ones_like(total))

    def importance(self) -> Float[Array, " num_experts"]:
        """The mean router probability of each expert, $P_e$ (of pooled
        statistics)."""
        return self.probabilities / jnp.maximum(self.count, jnp.ones_like(self.count))

    def loss(self) -> Float[Array, ""]:
        num_experts = self.assignments.shape[-1]
        load = lax.stop_gradient(self.load())
        balance = num_experts * jnp.sum(load * self.importance())
        z_loss = self.z / jnp.maximum(self.count, jnp.ones_like(self.count))
        return self.balance_coefficient * balance + self.z_loss_coefficient * z_loss


class TopKRouter(eqx.Module):
    """Routes one step to its `k` most probable experts.

    `logits = Linear(x)`, `probs = softmax(logits)`; the `k` experts with the
    largest probabilities are chosen and their probabilities renormalised to sum
    to one (the weights). Acts on one step:
    `weights, indices, statistics = router(x)` with `weights` and `indices` of
    shape `(k,)` (largest first) and `statistics` the step's `RouterStatistics`.

    **Arguments** (keyword only):

    - `in_features`: the width of the routed inputs;
    - `num_experts`: how many experts there are to choose from;
    - `k`: how many experts each step is sent to (default 2, `1 <= k <= num_experts`);
    - `renormalize`: default True, the weights are the top-k probabilities divided
      by their sum. With `k = 1` that weight is always 1, so the routing gets no
      gradient from the task loss (only from the auxiliary loss);
      `renormalize=False` uses the raw probabilities, the Switch Transformer's
      `k = 1` gate $p_i(x) E_i(x)$;
    - `balance_coefficient`: the weight of the load-balancing loss (default
      `1e-2`, the Switch Transformer's $\\alpha$);
    - `z_loss_coefficient`: the weight of the router z-loss (default `1e-3`, as in
      ST-MoE);
    - `key`.

    The logits' layer is orthogonal with scale $\\sqrt{0.1}$ and zero bias: the
    Switch Transformer's ten times smaller router initialisation, so routing starts
    near uniform.
    """

    linear: Linear
    in_features: int = eqx.field(static=True)
    num_experts: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    renormalize: bool = eqx.field(static=True)
    balance_coefficient: float = eqx.field(static=True)
    z_loss_coefficient: float = eqx.field(static=True)

    def __init__(
        self,
        *,
        in_features: int,
        num_experts: int,
        k: int = 2,
        renormalize: bool = True,
        balance_coefficient: float = 1e-2,
        z_loss_coefficient: float = 1e-3,
        key: PRNGKeyArray,
    ):
        if num_experts < 1:
            raise ValueError(
                f"TopKRouter: `num_experts` must be at least 1; got {num_experts}."
            )
        if not 1 <= k <= num_experts:
            raise ValueError(
                f"TopKRouter: `k` must be between 1 and num_experts={num_experts}; "
                f"got {k}."
            )
        if balance_coefficient < 0 or z_loss_coefficient < 0:
            raise ValueError(
                "TopKRouter: `balance_coefficient` and `z_loss_coefficient` must be "
                f"non-negative; got {balance_coefficient} and {z_loss_coefficient}."
            )
        self.linear = Linear(in_features, num_experts, scale=0.1**0.5, key=key)
        self.in_features = in_features
        self.num_experts = num_experts
        self.k = k
        self.renormalize = renormalize
        self.balance_coefficient = balance_coefficient
        self.z_loss_coefficient = z_loss_coefficient

    def init_statistics(self) -> RouterStatistics:
        """Empty statistics (every sum zero)."""
        dtype = self.linear.weight.dtype
        return RouterStatistics(
            assignments=jnp.zeros((self.num_experts,), dtype),
            probabilities=jnp.zeros((self.num_experts,), dtype),
            z=jnp.zeros((), dtype),
            count=jnp.zeros((), dtype),
            balance_coefficient=self.balance_coefficient,
            z_loss_coefficient=self.z_loss_coefficient,
        )

    @jax.named_scope("memrl_eqx.nn.TopKRouter")
    def __call__(
        self, x: Float[Array, " in_features"], *, key: PRNGKeyArray | None = None
    ) -> tuple[Float[Array, " k"], Int[Array, " k"], RouterStatistics]:
        logits = self.linear(x)
        log_probs = jax.nn.log_softmax(logits)
        top_log_probs, indices = lax.top_k(log_probs, self.k)
        if self.renormalize:
            weights = jax.nn.softmax(top_log_probs)
        else:
            weights = jnp.exp(top_log_probs)
        dtype = logits.dtype
        assignments = jnp.sum(jax.nn.one_hot(indices, self.num_experts, dtype=dtype), 0)
        statistics = RouterStatistics(
            assignments=assignments,
            probabilities=jnp.exp(log_probs),
            z=jnp.square(jax.nn.logsumexp(logits)),
            count=jnp.ones((), dtype),
            balance_coefficient=self.balance_coefficient,
            z_loss_coefficient=self.z_loss_coefficient,
        )
        return weights, indices, statistics


class MoE(AbstractSequenceModel):
    """A mixture of experts: each step's output is the router-weighted sum of the
    outputs of its top-k experts.

    `experts` are sequence models (a per-step module is wrapped with
    `as_sequence_model`) with equal output widths. Every expert runs densely over
    the whole sequence, resets included, because a recurrent expert needs every
    step to keep its state; then at step `t`,
    `y_t = sum_j weights_t[j] * experts[indices_t[j]](...)_t` with
    `weights_t, indices_t` from `router(xs[t])`.

    The carry is `(expert_carries, statistics)`: the tuple of the experts' carries
    and the router's `RouterStatistics`, running sums over every step processed.
    The statistics are not reset at episode starts and never affect the outputs;
    they are additive, so chunking holds for them too. An algorithm adds
    `auxiliary_loss(carry)` to its loss (after `clear_auxiliary` before its
    forward pass) to train the router towards balanced loads.

    **Arguments:** `experts` (a sequence of `router.num_experts` models), `router`
    (a `TopKRouter` whose `in_features` is the width of `xs`).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import RNN, GRUCell, MoE, TopKRouter, auxiliary_loss

    keys = jax.random.split(jax.random.key(0), 5)
    experts = [RNN(GRUCell(in_features=8, features=16, key=k)) for k in keys[:4]]
    moe = MoE(experts, TopKRouter(in_features=8, num_experts=4, k=2, key=keys[4]))
    carry, ys = moe(moe.init_carry(), jnp.ones((5, 8)), jnp.zeros(5, bool))
    assert ys.shape == (5, 16)
    loss = auxiliary_loss(carry)  # add to the algorithm's loss
    ```
    """

    experts: tuple[AbstractSequenceModel, ...]
    router: TopKRouter
    in_features: int = eqx.field(static=True)

    def __init__(self, experts: Sequence, router: TopKRouter):
        experts = tuple(as_sequence_model(expert) for expert in experts)
        if len(experts) != router.num_experts:
            raise ValueError(
                f"MoE: got {len(experts)} `experts` but the router has "
                f"num_experts={router.num_experts}."
            )
        self.experts = experts
        self.router = router
        self.in_features = router.in_features

    def init_carry(self) -> tuple[tuple[Carry, ...], RouterStatistics]:
        carries = tuple(expert.init_carry() for expert in self.experts)
        return carries, self.router.init_statistics()

    @jax.named_scope("memrl_eqx.nn.MoE")
    def __call__(
        self,
        carry: tuple[tuple[Carry, ...], RouterStatistics],
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[
        tuple[tuple[Carry, ...], RouterStatistics], Float[Array, "time out_features"]
    ]:
        check_sequence("MoE", xs, resets, self.in_features)
        expert_carries, statistics = carry
        new_carries, outputs = [], []
        for expert, expert_carry in zip(self.experts, expert_carries):
            expert_carry, ys = expert(expert_carry, xs, resets)
            new_carries.append(expert_carry)
            outputs.append(ys)
        shapes = {ys.shape for ys in outputs}
        if len(shapes) != 1:
            raise ValueError(
                "MoE: every expert must give outputs of the same shape; got "
                f"{[ys.shape for ys in outputs]}."
            )
        weights, indices, step_statistics = jax.vmap(self.router)(xs)
        per_step = jnp.stack(outputs, axis=1)  # (time, num_experts, out_features)
        chosen = jnp.take_along_axis(per_step, indices[:, :, None], axis=1)
        ys = jnp.sum(weights[:, :, None].astype(chosen.dtype) * chosen, axis=1)
        statistics = statistics.add(step_statistics.pool())
        return (tuple(new_carries), statistics), ys
