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


# POPGym's phase flag: its value in the observation.
_PLAY = 0
_WATCH = 1


class AutoencodeState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.Autoencode`][] episode: the suits
    dealt so far, in order, and the cards left in the deck (the information
    POPGym's `Autoencode.get_state` gives).

    **Fields:**

    - `cards`: the suits (in `0..3`) of the cards dealt, in order: the card dealt
        `i`-th (`0`-th at reset) is at `cards[i]`. Shape `(num_cards,)`, dtype
        int32; slots not yet dealt hold `0`.
    - `remaining`: the number of undealt cards of each suit. Shape `(4,)`, dtype
        int32.
    - `time`: the number of steps taken. Shape `()`, dtype int32, in
        `0..2 * num_cards - 2`. The cards are shown at times `0..num_cards - 1`
        and the agent recites them at times `num_cards - 1..2 * num_cards - 2`.
    """

    cards: Int[Array, " num_cards"]
    remaining: Int[Array, "4"]
    time: Int[Array, ""]


class Autoencode(environment.Environment[AutoencodeState, Any]):
    """POPGym's Autoencode: watch a deck go by, then recite its suits backwards.

    A deck of `num_cards = num_decks * 52` cards (`13 * num_decks` of each suit) is
    shuffled. In the *watch* phase it is dealt one card per step, and in the *play*
    phase the agent names the suits of all `num_cards` cards in the reverse order,
    the last card dealt first and the first card last. The task tests memorising a
    whole sequence and reading it out in order (last in, first out).

    The observation is POPGym's phase flag and a suit, each one-hot and
    concatenated: `Float[Array, "6"]`, with `[0:2]` the flag (index `0` play, `1`
    watch, POPGym's values) and `[2:6]` the suit of the card just dealt. The last
    card is shown with the flag already at *play*: the next action is scored. In
    the play phase no card is dealt and the suit slot holds suit `0`, as in POPGym,
    carrying no information. The action is a suit, in `0..3`; it is ignored while
    watching, and while playing it is scored against the card due: `+1 / num_cards`
    for the right suit, `-1 / num_cards` for a wrong one.

    One card is dealt at reset and one per step for `num_cards - 1` steps, then
    `num_cards` steps recite them: an episode has `2 * num_cards - 1` steps, of
    which `num_cards` are scored. The episode return lies in `[-1, 1]`, `1` for a
    perfect memory and `-1/2` in expectation for a uniformly random policy. The
    episode ends when the whole deck has been recited, which is a *termination*,
    never a truncation.

    The deck is dealt lazily (each card is drawn uniformly from the cards left),
    which gives the same sequences as shuffling it up front; the state keeps the
    suits dealt, so reset writes a `(num_cards,)` array of zeros.

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the
    episode length `2 * num_cards - 1`, which the deck fixes.

    **Arguments:**

    - `num_decks`: the number of 52-card decks shuffled together, the length
        of the sequence to memorise (POPGym's Easy/Medium/Hard use 1/2/3). At
        least 1.

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
        return environment.EnvParams(max_steps_in_episode=2 * self.num_cards - 1)

    def _observe(
        self, playing: Bool[Array, ""], suit: Int[Array, ""]
    ) -> Float[Array, "6"]:
        flag = jnp.where(playing, _PLAY, _WATCH).astype(jnp.int32)
        return jnp.concatenate([_one_hot(flag, 2), _one_hot(suit)])

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, "6"], AutoencodeState]:
        """Gathers the deck and deals its first card."""
        del params
        suit, remaining = _deal(key, _full_deck(self.num_cards, _NUM_SUITS))
        cards = jnp.zeros((self.num_cards,), dtype=jnp.int32).at[0].set(suit)
        time = jnp.array(0, dtype=jnp.int32)
        state = AutoencodeState(cards=cards, remaining=remaining, time=time)
        # A one-card deck would be recited at once: there are none.
        return self._observe(jnp.array(False), suit), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: AutoencodeState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "6"],
        AutoencodeState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Deals the next card while watching, or scores `action` against the card
        due while playing."""
        del params
        n = self.num_cards
        action = jnp.asarray(action).astype(jnp.int32)
        # The step at time t >= n - 1 recites the card dealt (2n - 2 - t)-th.
        scored = state.time >= n - 1
        target = state.cards[jnp.clip(2 * n - 2 - state.time, 0, n - 1)]
        scale = 1.0 / n
        reward = jnp.where(action == target, scale, -scale)
        reward = jnp.where(scored, reward, 0.0).astype(jnp.float32)
        # Dealing is computed every step (constant work) and kept while watching.
        suit, remaining = _deal(key, state.remaining)
        time = state.time + 1
        watching = time <= n - 1  # a card was dealt at this step
        slot = jnp.minimum(time, n - 1)
        cards = state.cards.at[slot].set(jnp.where(watching, suit, state.cards[slot]))
        remaining = jnp.where(watching, remaining, state.remaining)
        state = AutoencodeState(cards=cards, remaining=remaining, time=time)
        # The flag turns to play with the last card dealt.
        shown = jnp.where(watching, suit, 0).astype(jnp.int32)
        obs = self._observe(time >= n - 1, shown)
        terminated = time >= 2 * n - 1
        return obs, state, reward, terminated, {}

    def is_truncated(self, state: AutoencodeState, params: Any) -> Bool[Array, ""]:
        """Always `False`: the episode ends by termination once the deck is
        recited."""
        del state, params
        return jnp.array(False)

    def is_terminated(self, state: AutoencodeState, params: Any) -> Bool[Array, ""]:
        """Whether the whole deck has been recited."""
        del params
        return state.time >= 2 * self.num_cards - 1

    @property
    def num_actions(self) -> int:
        return _NUM_SUITS

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(4)`: a suit."""
        return spaces.Discrete(_NUM_SUITS)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (6,), float32)`: the phase flag (index `0` play, `1` watch)
        and the suit in view, each one-hot."""
        return spaces.Box(0.0, 1.0, (2 + _NUM_SUITS,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        n = self.num_cards
        return spaces.Dict(
            {
                "cards": spaces.Box(0, _NUM_SUITS - 1, (n,), jnp.int32),
                "remaining": spaces.Box(0, n // _NUM_SUITS, (_NUM_SUITS,), jnp.int32),
                "time": spaces.Discrete(2 * n - 1),
            }
        )


class AutoencodeEasy(Autoencode):
    """POPGym's Autoencode Easy: one deck (52 cards, 103 steps)."""

    def __init__(self):
        super().__init__(num_decks=1)


class AutoencodeMedium(Autoencode):
    """POPGym's Autoencode Medium: two decks (104 cards, 207 steps)."""

    def __init__(self):
        super().__init__(num_decks=2)


class AutoencodeHard(Autoencode):
    """POPGym's Autoencode Hard: three decks (156 cards, 311 steps)."""

    def __init__(self):
        super().__init__(num_decks=3)
