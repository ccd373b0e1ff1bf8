"""ObGD: overshooting-bounded gradient descent with eligibility traces
(Elsayed, Vasan and Mahmood 2024, "Streaming Deep Reinforcement Learning
Finally Works", Algorithm 3)."""

import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, Bool, Float, PyTree


ScalarLike = float | Float[Array, ""]


def accumulate_trace(
    trace: PyTree[Array],
    gradient: PyTree[Array],
    decay: ScalarLike,
    reset: Bool[Array, ""] | bool,
) -> PyTree[Array]:
    """An eligibility trace after one more step: $z \\leftarrow \\gamma\\lambda z + g$,
    with the old trace dropped when `reset` (the step is an episode's first).

    **Arguments:** `trace` $z$ and `gradient` $g$, PyTrees of one structure and
    shapes; `decay`, $\\gamma\\lambda$; `reset`, a boolean scalar.
    """
    keep = jnp.where(reset, 0.0, decay)
    return jtu.tree_map(lambda z, g: keep * z + g, trace, gradient)


def l1_norm(tree: PyTree[Array]) -> Float[Array, ""]:
    """$\\lVert z \\rVert_1$, the sum of the absolute values of every leaf."""
    return sum(
        (jnp.sum(jnp.abs(leaf)) for leaf in jtu.tree_leaves(tree)), jnp.float32(0.0)
    )


def obgd_step_size(
    trace: PyTree[Array],
    td_error: Float[Array, ""],
    *,
    learning_rate: ScalarLike,
    kappa: ScalarLike,
) -> Float[Array, ""]:
    """ObGD's effective step size,
    $\\hat\\alpha = \\alpha / \\max(1,\\ \\kappa\\,\\alpha\\,\\max(|\\delta|, 1)\\,
    \\lVert z \\rVert_1)$.

    The update $\\theta \\leftarrow \\theta + \\hat\\alpha\\,\\delta\\,z$ moves a
    function $f$ whose gradient is $z$ (to first order, $\\lambda = 0$) by
    $\\hat\\alpha\\,\\delta\\,\\lVert z \\rVert_2^2 \\le \\hat\\alpha\\,|\\delta|\\,
    \\lVert z\\rVert_1 \\max_i|z_i|$, and the bound keeps $\\hat\\alpha\\,
    \\lVert z\\rVert_1 \\le 1/(\\kappa\\max(|\\delta|,1))$, so one step cannot
    overshoot its own target by a large factor; `kappa` $\\ge 1$ sets the margin.
    Below the bound, $\\hat\\alpha = \\alpha$ (plain SGD with traces).

    **Arguments:** `trace`, the eligibility trace $z$ (a PyTree of arrays);
    `td_error`, $\\delta$ (a scalar); `learning_rate`, $\\alpha > 0$; `kappa`,
    $\\kappa > 0$ (keyword only).
    """
    bound = learning_rate * kappa * jnp.maximum(jnp.abs(td_error), 1.0) * l1_norm(trace)
    return learning_rate / jnp.maximum(bound, 1.0)


def obgd_update(
    params: PyTree[Array],
    trace: PyTree[Array],
    td_error: Float[Array, ""],
    *,
    learning_rate: ScalarLike,
    kappa: ScalarLike,
) -> tuple[PyTree[Array], Float[Array, ""]]:
    """One ObGD step: $\\theta + \\hat\\alpha\\,\\delta\\,z$ (see `obgd_step_size`)
    and $\\hat\\alpha$. `params` and `trace` have one structure and shapes."""
    step = obgd_step_size(trace, td_error, learning_rate=learning_rate, kappa=kappa)
    new = jtu.tree_map(lambda p, z: p + (step * td_error) * z, params, trace)
    return new, step
