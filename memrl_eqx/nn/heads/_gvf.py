"""`GVF` and `Horde`: general value functions as auxiliary predictions (Sutton et
al., 2011, "Horde: A Scalable Real-time Architecture for Learning Knowledge from
Unsupervised Sensorimotor Interaction")."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float


class GVF(eqx.Module):
    """A general value function: the expected discounted sum of a `cumulant`
    signal, `v(s) = E[Σ_k γ^k c_{t+k+1}]`, predicted by a value `head`.

    A GVF is a question (its cumulant and discount) and an answer (its head, any
    value head with the `VNetwork` interface: `head(x)`, `head.value(out)`,
    `head.loss(out, targets)`, such as `VNetwork` or `HLGaussVNetwork`). Its
    `__call__`, `value` and `loss` are the head's; `target` is its TD target.

    **Arguments:** `head` (positional), the value head; `cumulant`, a function
    `cumulant(transition) -> Float[Array, "*batch"]` of whatever transition
    structure the algorithm passes (for instance the next `Timestep`, whose
    `prev_reward` is the reward just received); `gamma`, the discount in `[0, 1]`.
    """

    head: eqx.Module
    cumulant: Callable[[Any], Array] = eqx.field(static=True)
    gamma: float = eqx.field(static=True)

    def __init__(
        self, head: eqx.Module, *, cumulant: Callable[[Any], Array], gamma: float
    ):
        if not callable(cumulant):
            raise ValueError(f"GVF: `cumulant` must be callable; got {cumulant!r}.")
        if not 0 <= gamma <= 1:
            raise ValueError(f"GVF: `gamma` must be in [0, 1]; got {gamma}.")
        self.head = head
        self.cumulant = cumulant
        self.gamma = float(gamma)

    def __call__(self, x: Float[Array, "time in_features"]) -> Any:
        return self.head(x)

    def value(self, out: Any) -> Float[Array, "*batch"]:
        """The head's value estimate."""
        return self.head.value(out)

    def loss(self, out: Any, targets: Float[Array, "*batch"]) -> Float[Array, "*batch"]:
        """The head's per-step loss against `targets`."""
        return self.head.loss(out, targets)

    def target(
        self,
        cumulant: Float[Array, "*batch"],
        next_value: Float[Array, "*batch"],
        terminated: Bool[Array, "*batch"],
    ) -> Float[Array, "*batch"]:
        """The TD(0) target `c + γ (1 - terminated) sg(next_value)`.

        `cumulant` is `self.cumulant(transition)`; `next_value` is `self.value` of
        the prediction at the next step; `terminated` stops the bootstrap (a
        truncated episode still bootstraps)."""
        continuing = 1 - terminated.astype(next_value.dtype)
        return cumulant + self.gamma * continuing * jax.lax.stop_gradient(next_value)


class HordeOutput(eqx.Module):
    """The output of a `Horde`: `main`, the main head's output, and `demons`, each
    demon's output by name."""

    main: Any
    demons: dict[str, Any]


class Horde(eqx.Module):
    """A main head plus named GVF demons, all reading the same torso features.

    - `out = horde(x, *args)`: a `HordeOutput` with `out.main = head(x, *args)` and
      `out.demons[name] = demon(x)`;
    - `horde.value(out)` / `horde.q_values(out)`: the main head's estimate;
    - `horde.demon_targets(next_out, transition, terminated)`: each demon's
      `target(demon.cumulant(transition), demon.value(next_out.demons[name]),
      terminated)`, by name; `next_out` is the Horde's output at the next steps
      (the same prediction shifted one step in time, or a target network's);
    - `horde.loss(out, *args, demon_targets=...)`: the main head's
      `loss(out.main, *args)` plus the sum of each demon's
      `loss(out.demons[name], demon_targets[name])`, per step. `args` are the main
      head's loss arguments after its output (`targets` for a value head,
      `actions, targets` for a Q head).

    The demons shape the shared torso features (auxiliary tasks) but never the
    main output. **Arguments:** `head` (positional), the main head; `demons`, a
    dict from names to `GVF`s.
    """

    head: eqx.Module
    demons: dict[str, GVF]

    def __init__(self, head: eqx.Module, *, demons: dict[str, GVF]):
        for name, demon in demons.items():
            if not isinstance(demon, GVF):
                raise ValueError(
                    f"Horde: `demons` must map names to `GVF`s; {name!r} is a "
                    f"{type(demon).__name__}."
                )
        self.head = head
        self.demons = dict(demons)

    def __call__(self, x: Float[Array, "time in_features"], *args: Any) -> HordeOutput:
        demons = {name: demon(x) for name, demon in self.demons.items()}
        return HordeOutput(main=self.head(x, *args), demons=demons)

    def value(self, out: HordeOutput) -> Any:
        """The main head's `value`."""
        return self.head.value(out.main)

    def q_values(self, out: HordeOutput) -> Any:
        """The main head's `q_values`."""
        return self.head.q_values(out.main)

    def demon_targets(
        self, next_out: HordeOutput, transition: Any, terminated: Bool[Array, "*batch"]
    ) -> dict[str, Float[Array, "*batch"]]:
        """Each demon's TD target, by name (see `GVF.target`)."""
        return {
            name: demon.target(
                demon.cumulant(transition),
                demon.value(next_out.demons[name]),
                terminated,
            )
            for name, demon in self.demons.items()
        }

    def loss(
        self,
        out: HordeOutput,
        *args: Any,
        demon_targets: dict[str, Float[Array, "*batch"]],
    ) -> Float[Array, "*batch"]:
        """The main loss plus the sum of the demons' losses, per step."""
        if set(demon_targets) != set(self.demons):
            raise ValueError(
                f"Horde.loss: `demon_targets` must have one entry per demon, "
                f"{sorted(self.demons)}; got {sorted(demon_targets)}."
            )
        loss = self.head.loss(out.main, *args)
        for name, demon in self.demons.items():
            loss = loss + demon.loss(out.demons[name], demon_targets[name])
        return loss
