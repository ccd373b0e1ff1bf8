"""Return estimators shared by the algorithms: λ-returns (and GAE from them),
n-step targets, and the value rescaling of R2D2.

All take one trajectory (leading axis time); `jax.vmap` them over a batch.
Episode boundaries follow one convention: `terminated[t]` means $o_{t+1}$ does not
exist (no bootstrap), `truncated[t]` means the episode was cut by a time limit
after step `t` (its successor exists but is not in the sequence), and
`done = terminated | truncated`.
"""

import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


Scalar = float | Float[Array, ""]


def gae(
    rewards: Float[Array, " time"],
    values: Float[Array, " time"],
    next_values: Float[Array, " time"],
    terminated: Bool[Array, " time"],
    done: Bool[Array, " time"],
    gamma: Scalar,
    gae_lambda: Scalar,
) -> tuple[Float[Array, " time"], Float[Array, " time"]]:
    """Generalised advantage estimation (Schulman et al. 2016), with truncation.

    $\\delta_t = r_t + \\gamma (1 - \\mathrm{terminated}_t) V'_t - V_t$ and
    $A_t = \\delta_t + \\gamma\\lambda (1 - \\mathrm{done}_t) A_{t+1}$.

    `next_values[t]` is the value of the observation that follows step `t` in the
    *same* episode: $V(o_{t+1})$ normally, and $V$ of the final observation where
    the episode was truncated at `t`. Only `terminated` zeroes the bootstrap;
    `done` stops the advantage from flowing across an episode boundary.

    **Arguments:** one trajectory; every array has shape `(time,)`.

    - `rewards`: $r_t$, the reward of step `t`.
    - `values`: $V_t$, the critic's value of the observation step `t` acted on.
    - `next_values`: $V'_t$, the value of the observation after step `t` in the
      same episode (above).
    - `terminated`: True where the episode ended at step `t` (no bootstrap).
    - `done`: `terminated | truncated`, True where step `t` is an episode's last.
    - `gamma`: the discount $\\gamma$, a float or a JAX scalar.
    - `gae_lambda`: $\\lambda$ in [0, 1], a float or a JAX scalar (0: one-step TD
      errors, 1: Monte-Carlo advantages).

    **Returns:** `(advantages, returns)`, each `(time,)`, with
    `returns = advantages + values`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from memrl_eqx.algorithms import gae

    rewards, values = jnp.ones(4), jnp.zeros(4)
    terminated = jnp.array([False, True, False, False])  # episode 1 ends at t=1
    advantages, returns = gae(
        rewards,
        values,
        next_values=jnp.zeros(4),
        terminated=terminated,
        done=terminated,
        gamma=0.9,
        gae_lambda=1.0,
    )
    assert advantages.shape == returns.shape == (4,)
    assert jnp.allclose(advantages, jnp.array([1.9, 1.0, 1.9, 1.0]))
    ```
    """
    deltas = rewards + gamma * jnp.where(terminated, 0.0, next_values) - values
    discounts = gamma * gae_lambda * jnp.where(done, 0.0, 1.0)

    def step(advantage, inputs):
        delta, discount = inputs
        advantage = delta + discount * advantage
        return advantage, advantage

    _, advantages = lax.scan(
        step, jnp.zeros((), values.dtype), (deltas, discounts), reverse=True
    )
    return advantages, advantages + values


def lambda_returns(
    rewards: Float[Array, " time"],
    next_values: Float[Array, " time"],
    terminated: Bool[Array, " time"],
    done: Bool[Array, " time"],
    gamma: Scalar,
    lambda_: Scalar,
) -> Float[Array, " time"]:
    """The λ-return $G^\\lambda_t = r_t + \\gamma (1 - \\mathrm{terminated}_t)
    \\big((1 - \\lambda) V'_t + \\lambda G^\\lambda_{t+1}\\big)$.

    `next_values[t]` is as in `gae`: the value of the observation after step `t`
    in the same episode, e.g. $\\max_a Q(o_{t+1}, a)$ for Peng's Q(λ) as in PQN.
    Where `done[t]` (and at the last step) $G^\\lambda_{t+1}$ is replaced by
    `next_values[t]`, so nothing flows across an episode boundary. λ = 0 gives
    one-step TD targets, λ = 1 Monte-Carlo returns bootstrapped at truncations
    and at the end.

    These are `gae`'s returns when each step's value is the previous step's
    next value, $V_t = V'_{t-1}$ (any $V_0$: it cancels), so one recursion serves
    both.

    **Arguments:** one trajectory; every array has shape `(time,)`.

    - `rewards`: $r_t$, the reward of step `t`.
    - `next_values`: $V'_t$, the value of the observation after step `t` in the
      same episode (above).
    - `terminated`: True where the episode ended at step `t` (no bootstrap).
    - `done`: `terminated | truncated`, True where step `t` is an episode's last.
    - `gamma`: the discount $\\gamma$, a float or a JAX scalar.
    - `lambda_`: $\\lambda$ in [0, 1], a float or a JAX scalar.

    **Returns:** the λ-returns $G^\\lambda_t$, shape `(time,)`.

    **Example:**

    ```python
    import jax.numpy as jnp
    from memrl_eqx.algorithms import lambda_returns

    rewards, never = jnp.ones(3), jnp.zeros(3, bool)
    # λ = 1 with zero values: the discounted sums of the rewards.
    returns = lambda_returns(rewards, jnp.zeros(3), never, never, 0.9, 1.0)
    assert jnp.allclose(returns, jnp.array([2.71, 1.9, 1.0]))
    # λ = 0: one-step TD targets r + γ V'.
    td = lambda_returns(rewards, jnp.full(3, 2.0), never, never, 0.9, 0.0)
    assert jnp.allclose(td, 2.8)
    ```
    """
    values = jnp.concatenate([jnp.zeros_like(next_values[:1]), next_values[:-1]])
    _, returns = gae(rewards, values, next_values, terminated, done, gamma, lambda_)
    return returns


def n_step_targets(
    rewards: Float[Array, " time"],
    values: Float[Array, " time"],
    terminated: Bool[Array, " time"],
    truncated: Bool[Array, " time"],
    gamma: Scalar,
    n: int,
) -> tuple[Float[Array, " time"], Bool[Array, " time"]]:
    """n-step targets inside one sequence, and where they are valid.

    `values[t]` is the bootstrap value of the *input* at step `t` (e.g.
    $Q_{\\text{target}}(o_t, a^*)$). The target of step `t` sums
    $\\gamma^i r_{t+i}$ for up to `n` steps and adds $\\gamma^k$ `values[t + k]`,
    stopping early at an episode boundary:

    - terminated at step `t + i`: the sum includes $r_{t+i}$ and bootstraps 0;
    - truncated at step `t + i` with `i > 0`: the sum stops *before* that step and
      bootstraps from `values[t + i]` (an observation of the same episode), a
      shorter but exact return;
    - truncated at `t` itself: its successor is not in the sequence, so the step
      has no target (`valid` False), rather than a target that mistakes the time
      limit for a termination.

    Steps whose `n` steps run past the end of the sequence are not valid either,
    so a sequence of `L + n` steps gives `L` valid targets.

    **Arguments:** one sequence; every array has shape `(time,)`.

    - `rewards`: $r_t$, the reward of step `t`.
    - `values`: the bootstrap values (above).
    - `terminated`: True where the episode ended at step `t`.
    - `truncated`: True where a time limit cut the episode after step `t`.
    - `gamma`: the discount $\\gamma$, a float or a JAX scalar.
    - `n`: the number of steps summed, a positive Python `int`.

    **Returns:** `(targets, valid)`, each `(time,)`; `targets` is 0 where
    `valid` is False.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n_step_targets: `n` must be a positive integer; got {n!r}.")
    length = rewards.shape[0]
    index = jnp.arange(length)
    at = lambda x, j: x[jnp.minimum(j, length - 1)]
    total = jnp.zeros_like(rewards)
    discount = jnp.ones_like(rewards)
    active = jnp.ones((length,), bool)
    valid = jnp.ones((length,), bool)
    for i in range(n + 1):
        j = index + i
        inside = j < length
        # Ran past the end of the sequence while still summing: no target.
        valid = valid & ~(active & ~inside)
        active = active & inside
        if i == n:
            # n steps summed: bootstrap from the n-th successor.
            total = total + jnp.where(active, discount * at(values, j), 0.0)
            break
        cut = active & at(truncated, j)
        if i == 0:
            valid = valid & ~cut
        else:
            total = total + jnp.where(cut, discount * at(values, j), 0.0)
        active = active & ~cut
        total = total + jnp.where(active, discount * at(rewards, j), 0.0)
        active = active & ~at(terminated, j)
        discount = discount * gamma
    return jnp.where(valid, total, 0.0), valid


def value_rescale(x: Array, epsilon: Scalar = 1e-3) -> Array:
    """R2D2's $h(x) = \\mathrm{sign}(x)(\\sqrt{|x| + 1} - 1) + \\epsilon x$
    (Kapturowski et al. 2019; Pohlen et al. 2018), which compresses large
    returns; the Q-network then learns $h$ of the return.

    **Arguments:** `x`, an array of any shape (applied elementwise); `epsilon`,
    the slope $\\epsilon$ of the linear term (default `1e-3`), which keeps $h$
    invertible. **Returns:** $h(x)$, of the shape of `x`.
    """
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1) - 1) + epsilon * x


def inverse_value_rescale(x: Array, epsilon: Scalar = 1e-3) -> Array:
    """The exact inverse of `value_rescale`:
    $h^{-1}(x) = \\mathrm{sign}(x)\\Big(\\big(\\frac{\\sqrt{1 + 4\\epsilon(|x| + 1 +
    \\epsilon)} - 1}{2\\epsilon}\\big)^2 - 1\\Big)$.

    **Arguments:** `x`, an array of any shape (applied elementwise); `epsilon`,
    the same $\\epsilon$ as `value_rescale`'s (default `1e-3`). **Returns:**
    $h^{-1}(x)$, of the shape of `x`.
    """
    root = (jnp.sqrt(1 + 4 * epsilon * (jnp.abs(x) + 1 + epsilon)) - 1) / (2 * epsilon)
    return jnp.sign(x) * (root**2 - 1)
