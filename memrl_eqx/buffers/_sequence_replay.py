"""`SequenceReplay`: a flashbax trajectory buffer sampled as sequences, uniformly
or by priority, from any start or from episode starts only."""

from typing import Any, ClassVar

import equinox as eqx
import flashbax as fbx
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree


class ReplayState(eqx.Module):
    """The contents of a `SequenceReplay`: a PyTree.

    - `buffer`: flashbax's `TrajectoryBufferState`; its `experience` leaves have
      shape `(num_envs, capacity, ...)`, one ring buffer per environment;
    - `priorities`: `(num_envs, capacity)`, the priority of the sequence that
      starts at each slot (before the exponent); a new slot gets `max_priority`;
    - `max_priority`: the largest priority ever set (1 at first).
    """

    buffer: TrajectoryBufferState
    priorities: Float[Array, "envs capacity"]
    max_priority: Float[Array, ""]

    # Leading axis `num_envs`: split across devices by `memrl_eqx.shard`.
    env_batched_fields: ClassVar[tuple[str, ...]] = ("buffer.experience", "priorities")


class ReplaySample(eqx.Module):
    """A batch of sequences from a `SequenceReplay`.

    - `data`: the stored PyTree, leaves `(batch, sequence_length, ...)`;
    - `rows`, `starts`: where each sequence starts (environment, slot), for
      `SequenceReplay.set_priorities`;
    - `probabilities`: the probability with which each was drawn;
    - `weights`: importance weights $(N P_i)^{-\\beta}$ normalised by their
      maximum over the batch (all 1 for uniform sampling with $\\beta = 0$).
    """

    data: PyTree[Array]
    rows: Int[Array, " batch"]
    starts: Int[Array, " batch"]
    probabilities: Float[Array, " batch"]
    weights: Float[Array, " batch"]


class SequenceReplay(eqx.Module):
    """Sequence replay over a flashbax trajectory buffer, shared by every replay
    method (DQN/R2D2, SAC, SACD).

    Each of `num_envs` environments writes its steps, in order, into its own ring
    of `capacity` slots (flashbax `make_trajectory_buffer`). `sample` draws
    `sample_batch_size` windows of `sequence_length` consecutive steps of one
    environment, never across the write head, with replacement:

    - uniformly over valid starts, or in proportion to `priority ** priority_exponent`
      when `prioritised` (R2D2's prioritised sequence replay, with importance
      weights);
    - from any start (segments: the stored carry at the start plus burn-in give
      the recurrent state), or only from starts where `start_mask` is set, e.g.
      episode starts (tape-based batching: a window is whole consecutive episodes
      from their first step, with no stored state needed).

    **Arguments:** `num_envs`, `capacity` (slots per environment), `sample_batch_size`,
    `sequence_length` (all positive integers, `sequence_length <= capacity`);
    `prioritised` (False); `priority_exponent` (0.9, R2D2's α; may be a JAX
    scalar).

    The replay object holds only this configuration; its contents are a
    [`memrl_eqx.buffers.ReplayState`][], made by `init`, threaded through `add`,
    `sample` and `set_priorities`, all pure and jittable.

    **Example:** two environments, windows of 3 steps, prioritised.

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.buffers import SequenceReplay

    replay = SequenceReplay(
        num_envs=2, capacity=16, sample_batch_size=4, sequence_length=3,
        prioritised=True,
    )
    state = replay.init({"obs": jnp.zeros(5), "reward": jnp.zeros(())})  # one step
    steps = {  # 6 steps of each environment: leaves (num_envs, steps, ...)
        "obs": jnp.ones((2, 6, 5)),
        "reward": jnp.arange(12.0).reshape(2, 6),
    }
    state = replay.add(state, steps)
    assert replay.can_sample(state)
    batch = replay.sample(state, jax.random.key(0), importance_exponent=0.6)
    assert batch.data["obs"].shape == (4, 3, 5)  # (batch, sequence_length, ...)
    assert (jnp.diff(batch.data["reward"], axis=1) == 1).all()  # consecutive steps
    # After the learner's update: new priorities for the windows it saw.
    state = replay.set_priorities(state, batch.rows, batch.starts, jnp.full(4, 2.0))
    assert state.max_priority == 2.0
    ```
    """

    num_envs: int = eqx.field(static=True)
    capacity: int = eqx.field(static=True)
    sample_batch_size: int = eqx.field(static=True)
    sequence_length: int = eqx.field(static=True)
    prioritised: bool = eqx.field(static=True)
    priority_exponent: float | Float[Array, ""]

    def __init__(
        self,
        *,
        num_envs: int,
        capacity: int,
        sample_batch_size: int,
        sequence_length: int,
        prioritised: bool = False,
        priority_exponent: float | Float[Array, ""] = 0.9,
    ):
        for name, value in (
            ("num_envs", num_envs),
            ("capacity", capacity),
            ("sample_batch_size", sample_batch_size),
            ("sequence_length", sequence_length),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"SequenceReplay: `{name}` must be a positive integer; "
                    f"got {value!r}."
                )
        if sequence_length > capacity:
            raise ValueError(
                f"SequenceReplay: `sequence_length` ({sequence_length}) must not "
                f"exceed `capacity` ({capacity}), the slots per environment."
            )
        self.num_envs = num_envs
        self.capacity = capacity
        self.sample_batch_size = sample_batch_size
        self.sequence_length = sequence_length
        self.prioritised = prioritised
        self.priority_exponent = priority_exponent

    def _buffer(self):
        return fbx.make_trajectory_buffer(
            add_batch_size=self.num_envs,
            sample_batch_size=self.sample_batch_size,
            sample_sequence_length=self.sequence_length,
            period=1,
            min_length_time_axis=self.sequence_length,
            max_length_time_axis=self.capacity,
        )

    def init(self, example: PyTree[Any]) -> ReplayState:
        """An empty replay for steps shaped like `example` (one step of one
        environment, no batch or time axes)."""
        return ReplayState(
            buffer=self._buffer().init(example),
            priorities=jnp.zeros((self.num_envs, self.capacity), jnp.float32),
            max_priority=jnp.ones((), jnp.float32),
        )

    def add(self, state: ReplayState, data: PyTree[Array]) -> ReplayState:
        """Append `data` (leaves `(num_envs, steps, ...)`, `steps <= capacity`),
        continuing every environment's stream; the new slots get `max_priority`."""
        steps = jtu.tree_leaves(data)[0].shape[1]
        if steps > self.capacity:
            raise ValueError(
                f"SequenceReplay.add: {steps} steps per environment exceed the "
                f"`capacity` ({self.capacity})."
            )
        slots = (state.buffer.current_index + jnp.arange(steps)) % self.capacity
        return ReplayState(
            buffer=self._buffer().add(state.buffer, data),
            priorities=state.priorities.at[:, slots].set(state.max_priority),
            max_priority=state.max_priority,
        )

    def valid_starts(self, state: ReplayState) -> Bool[Array, "envs capacity"]:
        """Where a window of `sequence_length` steps may start: it lies inside the
        written data and does not cross the write head."""
        slot = jnp.arange(self.capacity)
        head = state.buffer.current_index
        age = (slot - head) % self.capacity  # 0 = oldest slot when full
        valid = jnp.where(
            state.buffer.is_full,
            age + self.sequence_length <= self.capacity,
            slot + self.sequence_length <= head,
        )
        return jnp.broadcast_to(valid, (self.num_envs, self.capacity))

    def can_sample(
        self,
        state: ReplayState,
        start_mask: Bool[Array, "envs capacity"] | None = None,
    ) -> Bool[Array, ""]:
        """Whether at least one window may be drawn."""
        valid = self.valid_starts(state)
        if start_mask is not None:
            valid = valid & start_mask
        return jnp.any(valid)

    def sample(
        self,
        state: ReplayState,
        key: PRNGKeyArray,
        start_mask: Bool[Array, "envs capacity"] | None = None,
        importance_exponent: float | Float[Array, ""] = 0.0,
    ) -> ReplaySample:
        """Draw `sample_batch_size` windows (with replacement). `start_mask`
        restricts the starts (e.g. to episode starts); `importance_exponent` is
        β of the importance weights. Call only when `can_sample` holds."""
        valid = self.valid_starts(state)
        if start_mask is not None:
            valid = valid & start_mask
        if self.prioritised:
            weight = jnp.where(
                valid, jnp.maximum(state.priorities, 0.0) ** self.priority_exponent, 0
            )
        else:
            weight = valid.astype(jnp.float32)
        probabilities = (weight / jnp.sum(weight)).ravel()
        index = jr.choice(
            key, probabilities.size, (self.sample_batch_size,), p=probabilities
        )
        rows, starts = index // self.capacity, index % self.capacity
        shape = (self.sample_batch_size, self.sequence_length)
        offsets = jnp.broadcast_to(jnp.arange(self.sequence_length), shape)
        slots = (jnp.broadcast_to(starts[:, None], shape) + offsets) % self.capacity
        rows_ = jnp.broadcast_to(rows[:, None], shape)
        data = jtu.tree_map(lambda x: x[rows_, slots], state.buffer.experience)
        p = probabilities[index]
        count = jnp.sum(valid.astype(jnp.float32))
        weights = (count * p) ** -importance_exponent
        return ReplaySample(
            data=data,
            rows=rows,
            starts=starts,
            probabilities=p,
            weights=weights / jnp.max(weights),
        )

    def set_priorities(
        self,
        state: ReplayState,
        rows: Int[Array, " batch"],
        starts: Int[Array, " batch"],
        priorities: Float[Array, " batch"],
    ) -> ReplayState:
        """Set the priorities of the windows starting at `(rows, starts)` (as
        returned in a `ReplaySample`), and raise `max_priority` if exceeded."""
        priorities = jnp.asarray(priorities, jnp.float32)
        return ReplayState(
            buffer=state.buffer,
            priorities=state.priorities.at[rows, starts].set(priorities),
            max_priority=jnp.maximum(state.max_priority, jnp.max(priorities)),
        )
