from typing import Any

import equinox as eqx
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._cards import (
    _check_num_decks,
    _deal,
    _DECK_SIZE,
    _full_deck,
    _NUM_SUITS,
    _one_hot,
)


class RepeatFirstState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.RepeatFirst`][] episode: the first
    suit dealt and the cards left in the deck (the information POPGym's
    `RepeatFirst.get_state` gives).

    **Fields:**

    - `first`: the suit (in `0..3`) of the card dealt at reset, the answer to every
        step. Shape `()`, dtype int32.
    - `remaining`: the number of undealt cards of each suit. Shape `(4,)`, dtype
        int32.
    - `time`: the number of steps taken, which is also the index of the card in
        view. Shape `()`, dtype int32, in `0..num_cards - 1`.
    """

    first: Int[Array, ""]
    remaining: Int[Array, "4"]
    time: Int[Array, ""]


class RepeatFirst(environment.Environment[RepeatFirstState, Any]):
    """POPGym's Repeat First: name the suit of the first card, at every step.

    A deck of `num_decks * 52` cards (`13 * num_decks` of each suit) is shuffled
    and dealt one card per step. The observation is the suit of the card just
    dealt, one-hot: `Float[Array, "4"]`. The action is a suit, in `0..3`, and is
    always scored against the first card, the one dealt at reset (in view only
    before the first step): `+1 / (num_cards - 1)` for the right suit and
    `-1 / (num_cards - 1)` for a wrong one. The task tests holding one item in
    memory, unchanged, while a long stream of distractors goes by. (POPGym's
    docstring mentions a flag marking the first card; its observation has none, and
    neither has this one.)

    One card is dealt at reset, so an episode has `num_cards - 1` steps, all
    scored: the episode return lies in `[-1, 1]`, `1` for a perfect memory and
    `-1/2` in expectation for a uniformly random policy. The episode ends when the
    deck is exhausted, which is a *termination* (the task is over), never a
    truncation.

    The deck is dealt lazily (each card is drawn uniformly from the cards left),
    which gives the same sequences as shuffling it up front at a constant cost per
    step and per reset.

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the
    episode length `num_cards - 1` for algorithms that want it, but the length is
    fixed by the deck.

    **Arguments:**

    - `num_decks`: the number of 52-card decks shuffled together, which sets the
        episode length (POPGym's Easy/Medium/Hard use 1/8/16). At least 1.

    Keyword only; the default is `num_decks=1`.
    """

    num_decks: int

    def __init__(self, *, num_decks: int = 1):
        super().__init__()
        self.num_decks = _check_num_decks(num_decks)

    @property
    def num_cards(self) -> int:
        """The number of cards in the deck, `num_decks * 52`."""
        return self.num_decks * _DECK_SIZE

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.num_cards - 1)

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, "4"], RepeatFirstState]:
        """Gathers the deck and deals its first card, the one to remember."""
        del params
        first, remaining = _deal(key, _full_deck(self.num_cards, _NUM_SUITS))
        time = jnp.array(0, dtype=jnp.int32)
        state = RepeatFirstState(first=first, remaining=remaining, time=time)
        return _one_hot(first), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: RepeatFirstState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "4"],
        RepeatFirstState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Scores `action` against the first card, then deals one."""
        del params
        action = jnp.asarray(action).astype(jnp.int32)
        scale = 1.0 / (self.num_cards - 1)
        reward = jnp.where(action == state.first, scale, -scale).astype(jnp.float32)
        suit, remaining = _deal(key, state.remaining)
        time = state.time + 1
        state = RepeatFirstState(first=state.first, remaining=remaining, time=time)
        # One card was dealt at reset and one per step: the last is dealt now.
        terminated = time >= self.num_cards - 1
        return _one_hot(suit), state, reward, terminated, {}

    def is_truncated(self, state: RepeatFirstState, params: Any) -> Bool[Array, ""]:
        """Always `False`: the episode ends by termination when the deck runs out."""
        del state, params
        return jnp.array(False)

    def is_terminated(self, state: RepeatFirstState, params: Any) -> Bool[Array, ""]:
        """Whether the last card of the deck is in view."""
        del params
        return state.time >= self.num_cards - 1

    @property
    def num_actions(self) -> int:
        return _NUM_SUITS

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(4)`: a suit."""
        return spaces.Discrete(_NUM_SUITS)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (4,), float32)`: the suit in view, one-hot."""
        return spaces.Box(0.0, 1.0, (_NUM_SUITS,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "first": spaces.Discrete(_NUM_SUITS),
                "remaining": spaces.Box(
                    0, self.num_cards // _NUM_SUITS, (_NUM_SUITS,), jnp.int32
                ),
                "time": spaces.Discrete(self.num_cards),
            }
        )


class RepeatFirstEasy(RepeatFirst):
    """POPGym's Repeat First Easy: one deck (51 steps)."""

    def __init__(self):
        super().__init__(num_decks=1)


class RepeatFirstMedium(RepeatFirst):
    """POPGym's Repeat First Medium: eight decks (415 steps)."""

    def __init__(self):
        super().__init__(num_decks=8)


class RepeatFirstHard(RepeatFirst):
    """POPGym's Repeat First Hard: sixteen decks (831 steps)."""

    def __init__(self):
        super().__init__(num_decks=16)
