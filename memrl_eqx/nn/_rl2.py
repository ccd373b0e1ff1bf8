"""`RL2Wrapper`: memory kept across the episodes of a trial (RL², meta-RL)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .._custom_types import Carry
from ._misc import check_sequence
from ._sequence_model import AbstractSequenceModel
from ._wrapper import as_sequence_model


RL2Carry = tuple[Carry, Int[Array, ""]]


class RL2Wrapper(AbstractSequenceModel):
    """Resets the wrapped model at *trial* boundaries only (RL²: Duan et al.
    2016, "RL²: Fast Reinforcement Learning via Slow Reinforcement Learning";
    Wang et al. 2016, "Learning to reinforcement learn").

    A trial is a run of several episodes of one task; the memory persists across
    the episode boundaries inside it, so the model can learn the task within the
    trial. The environment's `resets` are therefore *not* passed on as resets;
    the wrapper computes its own, from a counter in the carry:

    - `steps_per_trial=n`: the inner model is reset at step $t$ of a call when
      `(count + t) % n == 0`, `count` being the number of steps taken so far
      (modulo `n`); the environment's resets are ignored. A fresh carry has
      `count = 0`, so its first step starts a trial.
    - `episodes_per_trial=n`: the inner model is reset at the first episode
      start of each trial: at episode starts number $1, n + 1, 2n + 1, \\dots$
      (an episode start is a step where `resets` is set; the first step of a
      fresh carry also counts as one). `count` is the number of episodes begun
      in the current trial, from 1 to `n`, and 0 in a fresh carry.

    Give exactly one of the two. (To condition the model on the episode
    boundaries, as RL² does, feed the done flags and rewards in as inputs, e.g.
    with a `FeatureExtractor`.)

    **Carry:** `(inner_carry, count)`, `count` an int32 scalar, 0 at the start.
    Chunking holds exactly: running `xs[:k]` then `xs[k:]` with the carry handed
    over gives the same inner resets as running `xs` at once. Reset isolation
    holds at trial boundaries, not at episode boundaries inside a trial (by
    design).

    **Arguments:** `model` (a sequence model; a per-step module is wrapped in
    `SequenceModelWrapper`), and keyword-only `steps_per_trial` or
    `episodes_per_trial` (a positive int).
    """

    model: AbstractSequenceModel
    steps_per_trial: int | None = eqx.field(static=True)
    episodes_per_trial: int | None = eqx.field(static=True)

    def __init__(
        self,
        model,
        *,
        steps_per_trial: int | None = None,
        episodes_per_trial: int | None = None,
    ):
        if (steps_per_trial is None) == (episodes_per_trial is None):
            raise ValueError(
                "RL2Wrapper: give exactly one of `steps_per_trial` and "
                f"`episodes_per_trial`; got steps_per_trial={steps_per_trial!r}, "
                f"episodes_per_trial={episodes_per_trial!r}."
            )
        for name, value in (
            ("steps_per_trial", steps_per_trial),
            ("episodes_per_trial", episodes_per_trial),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"RL2Wrapper: `{name}` must be a positive int; got {value!r}."
                )
        self.model = as_sequence_model(model)
        self.steps_per_trial = steps_per_trial
        self.episodes_per_trial = episodes_per_trial

    @property
    def in_features(self) -> int | None:
        """The width of the inputs, if the wrapped model declares it."""
        return getattr(self.model, "in_features", None)

    def init_carry(self) -> RL2Carry:
        """The wrapped model's initial carry and a zero counter."""
        return self.model.init_carry(), jnp.zeros((), jnp.int32)

    def trial_resets(
        self, count: Int[Array, ""], resets: Bool[Array, " time"]
    ) -> tuple[Bool[Array, " time"], Int[Array, ""]]:
        """The resets passed to the wrapped model (True at each step that starts a
        trial) and the counter after the sequence, given the counter before it
        and the environment's `resets`."""
        time = resets.shape[0]
        steps = jnp.arange(time, dtype=jnp.int32)
        if self.steps_per_trial is not None:
            n = self.steps_per_trial
            return (count + steps) % n == 0, (count + time) % n
        n = self.episodes_per_trial
        starts = resets | ((steps == 0) & (count == 0))
        # The ordinal (from 1, modulo n) of the episode in progress at each step.
        ordinal = count + jnp.cumsum(starts.astype(jnp.int32), dtype=jnp.int32)
        inner = starts & ((ordinal - 1) % n == 0)
        last = count + jnp.sum(starts.astype(jnp.int32), dtype=jnp.int32)
        return inner, jnp.where(last > 0, (last - 1) % n + 1, 0)

    @jax.named_scope("memrl_eqx.nn.RL2Wrapper")
    def __call__(
        self,
        carry: RL2Carry,
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[RL2Carry, Float[Array, "time out_features"]]:
        in_features = self.in_features
        if isinstance(in_features, int):
            check_sequence("RL2Wrapper", xs, resets, in_features)
        elif xs.ndim != 2 or resets.shape != xs.shape[:1] or resets.dtype != bool:
            raise ValueError(
                "RL2Wrapper: expected `xs` of shape (time, features) and boolean "
                f"`resets` of shape (time,); got {xs.shape} and {resets.shape} "
                f"({resets.dtype})."
            )
        inner_carry, count = carry
        inner_resets, count = self.trial_resets(count, resets)
        inner_carry, ys = self.model(inner_carry, xs, inner_resets)
        return (inner_carry, count), ys
