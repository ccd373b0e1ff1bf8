from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._cards import (
    _check_num_decks,
    _deal,
    _DECK_SIZE,
    _full_deck,
    _NUM_COLORS,
    _NUM_RANKS,
    _NUM_SUITS,
    _one_hot,
)


_NUM_KINDS = {"colors": _NUM_COLORS, "suits": _NUM_SUITS, "ranks": _NUM_RANKS}


class CountRecallState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.CountRecall`][] episode: how many
    cards of each kind have been dealt, the question in view and what is left of
    the two decks (the information POPGym's `CountRecall.get_state` gives).

    **Fields:**

    - `counts`: the number of cards of each kind dealt from the value deck so far,
        the card in view included. Shape `(num_kinds,)`, dtype int32.
    - `query`: the kind (in `0..num_kinds - 1`) asked about in view, whose count is
        the answer to the next step. Shape `()`, dtype int32.
    - `value_remaining`, `query_remaining`: the number of undealt cards of each kind
        in the value deck and in the query deck. Shape `(num_kinds,)`, dtype int32.
    - `time`: the number of steps taken. Shape `()`, dtype int32, in
        `0..num_cards - 1`.
    """

    counts: Int[Array, " kinds"]
    query: Int[Array, ""]
    value_remaining: Int[Array, " kinds"]
    query_remaining: Int[Array, " kinds"]
    time: Int[Array, ""]


class CountRecall(environment.Environment[CountRecallState, Any]):
    """POPGym's Count Recall: say how many cards of a kind have been dealt so far.

    Two decks of `num_decks * 52` cards are shuffled independently, a *value* deck
    and a *query* deck, and each deals one card per step. Cards are told apart by
    one attribute, `deck_type`: their colour (2 kinds), suit (4) or rank (13), each
    kind `max_count = num_cards / num_kinds` times in a deck. The observation is the
    kind of the value card just dealt and the kind of the query card just dealt,
    each one-hot and concatenated: `Float[Array, "2*num_kinds"]`, the value in
    `[:num_kinds]` and the query in `[num_kinds:]`. The action is a count, in
    `0..max_count`. The action at each step is scored against the number of value
    cards of the queried kind dealt so far, the one in view included:
    `+1 / (num_cards - 1)` if it is right, `-1 / (num_cards - 1)` otherwise. The
    task tests an order-free memory: a tally of everything seen, read out by kind.

    One card of each deck is dealt at reset, so an episode has `num_cards - 1`
    steps, all scored: the episode return lies in `[-1, 1]`, `1` for a perfect
    memory and `2 / (max_count + 1) - 1` in expectation for a uniformly random
    policy. The episode ends when the decks are exhausted, which is a
    *termination*, never a truncation.

    As in POPGym 1.0.7, the action space is `Discrete(max_count + 1)`, so that
    every count up to `max_count` (the answer once every card of the queried kind
    has been dealt) can be named and a perfect memory scores `1`. POPGym's
    `error_clamp` argument is accepted but unused by its reward, and is left out.
    The decks are dealt lazily (each card drawn uniformly from those left in its
    deck), which gives the same sequences as shuffling them up front.

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the
    episode length `num_cards - 1`, which the decks fix.
    """

    num_decks: int
    deck_type: str

    def __init__(
        self,
        *,
        num_decks: int = 1,
        deck_type: str = "colors",
    ):
        """**Arguments:**

        - `num_decks`: the number of 52-card decks shuffled together in each of the
            two decks, which sets the episode length (POPGym's Easy/Medium/Hard use
            1/2/4). At least 1.
        - `deck_type`: what tells cards apart, `"colors"`, `"suits"` or `"ranks"`
            (POPGym's Easy/Medium/Hard use colours/suits/ranks).
        """
        super().__init__()
        self.num_decks = _check_num_decks(num_decks)
        if deck_type not in _NUM_KINDS:
            raise ValueError(
                "deck_type must be one of 'colors', 'suits' or 'ranks', got "
                f"{deck_type!r}."
            )
        self.deck_type = deck_type

    @property
    def num_cards(self) -> int:
        """The number of cards in each deck, `num_decks * 52`."""
        return self.num_decks * _DECK_SIZE

    @property
    def num_kinds(self) -> int:
        """The number of kinds `deck_type` tells apart: 2, 4 or 13."""
        return _NUM_KINDS[self.deck_type]

    @property
    def max_count(self) -> int:
        """The number of cards of each kind in a deck, the largest answer."""
        return self.num_cards // self.num_kinds

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.num_cards - 1)

    def _observe(
        self, value: Int[Array, ""], query: Int[Array, ""]
    ) -> Float[Array, " obs"]:
        return jnp.concatenate(
            [_one_hot(value, self.num_kinds), _one_hot(query, self.num_kinds)]
        )

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, " obs"], CountRecallState]:
        """Gathers both decks and deals the first card of each."""
        del params
        value_key, query_key = jax.random.split(key)
        full = _full_deck(self.num_cards, self.num_kinds)
        value, value_remaining = _deal(value_key, full)
        query, query_remaining = _deal(query_key, full)
        counts = jnp.zeros((self.num_kinds,), dtype=jnp.int32).at[value].set(1)
        state = CountRecallState(
            counts=counts,
            query=query,
            value_remaining=value_remaining,
            query_remaining=query_remaining,
            time=jnp.array(0, dtype=jnp.int32),
        )
        return self._observe(value, query), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: CountRecallState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, " obs"],
        CountRecallState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Scores `action` against the count of the queried kind, then deals a card
        from each deck."""
        del params
        action = jnp.asarray(action).astype(jnp.int32)
        scale = 1.0 / (self.num_cards - 1)
        correct = action == state.counts[state.query]
        reward = jnp.where(correct, scale, -scale).astype(jnp.float32)
        value_key, query_key = jax.random.split(key)
        value, value_remaining = _deal(value_key, state.value_remaining)
        query, query_remaining = _deal(query_key, state.query_remaining)
        time = state.time + 1
        state = CountRecallState(
            counts=state.counts.at[value].add(1),
            query=query,
            value_remaining=value_remaining,
            query_remaining=query_remaining,
            time=time,
        )
        # One card of each deck was dealt at reset and one per step.
        terminated = time >= self.num_cards - 1
        return self._observe(value, query), state, reward, terminated, {}

    def is_truncated(self, state: CountRecallState, params: Any) -> Bool[Array, ""]:
        """Always `False`: the episode ends by termination when the decks run out."""
        del state, params
        return jnp.array(False)

    def is_terminated(self, state: CountRecallState, params: Any) -> Bool[Array, ""]:
        """Whether the last cards of the decks are in view."""
        del params
        return state.time >= self.num_cards - 1

    @property
    def num_actions(self) -> int:
        return self.max_count + 1

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(max_count + 1)`: a count."""
        return spaces.Discrete(self.max_count + 1)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (2 * num_kinds,), float32)`: the kinds of the value card and
        of the query card in view, each one-hot."""
        return spaces.Box(0.0, 1.0, (2 * self.num_kinds,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        kinds = (self.num_kinds,)
        return spaces.Dict(
            {
                "counts": spaces.Box(0, self.max_count, kinds, jnp.int32),
                "query": spaces.Discrete(self.num_kinds),
                "value_remaining": spaces.Box(0, self.max_count, kinds, jnp.int32),
                "query_remaining": spaces.Box(0, self.max_count, kinds, jnp.int32),
                "time": spaces.Discrete(self.num_cards),
            }
        )


class CountRecallEasy(CountRecall):
    """POPGym's Count Recall Easy: one deck (51 steps), counting colours (answers
    `0..26`)."""

    def __init__(self):
        super().__init__(num_decks=1, deck_type="colors")


class CountRecallMedium(CountRecall):
    """POPGym's Count Recall Medium: two decks (103 steps), counting suits (answers
    `0..26`)."""

    def __init__(self):
        super().__init__(num_decks=2, deck_type="suits")


class CountRecallHard(CountRecall):
    """POPGym's Count Recall Hard: four decks (207 steps), counting ranks (answers
    `0..16`)."""

    def __init__(self):
        super().__init__(num_decks=4, deck_type="ranks")
