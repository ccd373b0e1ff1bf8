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
    _NUM_RANKS,
    _one_hot,
)


_HIGHER = 0
_LOWER = 1


class HigherLowerState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.HigherLower`][] episode: the rank in
    view and the cards left in the deck (POPGym's `HigherLower.get_state` gives the
    ranks dealt, the same information).

    **Fields:**

    - `rank`: the rank of the card in view, in `0..12` (ace low to king). Shape
        `()`, dtype int32.
    - `remaining`: the number of undealt cards of each rank. Shape `(13,)`, dtype
        int32.
    - `time`: the number of steps taken. Shape `()`, dtype int32, in
        `0..num_cards - 1`.
    """

    rank: Int[Array, ""]
    remaining: Int[Array, "13"]
    time: Int[Array, ""]


class HigherLower(environment.Environment[HigherLowerState, Any]):
    """POPGym's Higher/Lower: guess whether the next card ranks above the last.

    A deck of `num_cards = num_decks * 52` cards (`4 * num_decks` of each of the 13
    ranks, ace low, king high) is shuffled and dealt one card per step. The
    observation is the rank of the card just dealt, one-hot: `Float[Array, "13"]`.
    The action is a guess about the next card: `0` higher, `1` lower. The next card
    is then dealt and the guess scored: `+1 / num_cards` if right, `-1 / num_cards`
    if wrong and `0` if the ranks are equal (a push).

    Without memory the best guess follows the ranks of a full deck (higher from a
    low card, lower from a high one); counting the cards already dealt tells which
    ranks are left and improves the odds, most of all near the end of the deck.
    The task tests this running tally. As the actions do not change the cards, the
    best policy guesses, at every step, the likelier side given the cards left; no
    policy can be sure of the maximum return.

    One card is dealt at reset, so an episode has `num_cards - 1` steps, each
    worth at most `1 / num_cards`: the episode return lies in
    `[-(num_cards - 1) / num_cards, (num_cards - 1) / num_cards]`, `0` in
    expectation for a uniformly random policy. The episode ends when the deck is
    exhausted, which is a *termination*, never a truncation.

    The deck is dealt lazily (each card is drawn uniformly from the cards left),
    which gives the same sequences as shuffling it up front at a constant cost per
    step and per reset.

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the
    episode length `num_cards - 1`, which the deck fixes.

    **Arguments:**

    - `num_decks`: the number of 52-card decks shuffled together (POPGym's
        Easy/Medium/Hard use 1/2/3). At least 1.

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
    ) -> tuple[Float[Array, "13"], HigherLowerState]:
        """Gathers the deck and deals its first card."""
        del params
        rank, remaining = _deal(key, _full_deck(self.num_cards, _NUM_RANKS))
        time = jnp.array(0, dtype=jnp.int32)
        state = HigherLowerState(rank=rank, remaining=remaining, time=time)
        return _one_hot(rank, _NUM_RANKS), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: HigherLowerState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "13"],
        HigherLowerState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Deals the next card and scores the guess `action` about it."""
        del params
        action = jnp.asarray(action).astype(jnp.int32)
        rank, remaining = _deal(key, state.remaining)
        scale = 1.0 / self.num_cards
        right = (rank > state.rank) == (action == _HIGHER)
        reward = jnp.where(right, scale, -scale)
        reward = jnp.where(rank == state.rank, 0.0, reward).astype(jnp.float32)
        time = state.time + 1
        state = HigherLowerState(rank=rank, remaining=remaining, time=time)
        # One card was dealt at reset and one per step: the last is dealt now.
        terminated = time >= self.num_cards - 1
        return _one_hot(rank, _NUM_RANKS), state, reward, terminated, {}

    def is_truncated(self, state: HigherLowerState, params: Any) -> Bool[Array, ""]:
        """Always `False`: the episode ends by termination when the deck runs out."""
        del state, params
        return jnp.array(False)

    def is_terminated(self, state: HigherLowerState, params: Any) -> Bool[Array, ""]:
        """Whether the last card of the deck is in view."""
        del params
        return state.time >= self.num_cards - 1

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(2)`: `0` guesses higher, `1` lower."""
        return spaces.Discrete(2)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (13,), float32)`: the rank in view, one-hot."""
        return spaces.Box(0.0, 1.0, (_NUM_RANKS,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "rank": spaces.Discrete(_NUM_RANKS),
                "remaining": spaces.Box(
                    0, self.num_cards // _NUM_RANKS, (_NUM_RANKS,), jnp.int32
                ),
                "time": spaces.Discrete(self.num_cards),
            }
        )


class HigherLowerEasy(HigherLower):
    """POPGym's Higher/Lower Easy: one deck (51 steps)."""

    def __init__(self):
        super().__init__(num_decks=1)


class HigherLowerMedium(HigherLower):
    """POPGym's Higher/Lower Medium: two decks (103 steps)."""

    def __init__(self):
        super().__init__(num_decks=2)


class HigherLowerHard(HigherLower):
    """POPGym's Higher/Lower Hard: three decks (155 steps)."""

    def __init__(self):
        super().__init__(num_decks=3)
