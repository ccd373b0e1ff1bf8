from typing import Any

import equinox as eqx
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._cards import _deal, _DECK_SIZE, _NUM_SUITS, _one_hot
from ._validation import _as_int


class RepeatPreviousState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.RepeatPrevious`][] episode: the last
    `k` suits dealt and the cards left in the deck (the information POPGym's
    `RepeatPrevious.get_state` gives).

    **Fields:**

    - `history`: a ring buffer of the suits (in `0..3`) of the last `k` cards dealt:
        the card dealt `i`-th (`0`-th at reset) is at `history[i % k]`. Shape
        `(k,)`, dtype int32; slots not yet written hold `0`.
    - `remaining`: the number of undealt cards of each suit. Shape `(4,)`, dtype
        int32.
    - `time`: the number of steps taken, which is also the index of the card in
        view. Shape `()`, dtype int32, in `0..num_cards - 1`.
    """

    history: Int[Array, " k"]
    remaining: Int[Array, "4"]
    time: Int[Array, ""]


class RepeatPrevious(environment.Environment[RepeatPreviousState, Any]):
    """POPGym's Repeat Previous: name the suit of the `k`-th most recent card.

    A deck of `num_decks * 52` cards (`13 * num_decks` of each suit) is shuffled
    and dealt one card per step. The observation is the suit of the card just
    dealt, one-hot: `Float[Array, "4"]`. The action is a suit, in `0..3`. Counting
    the card in view as the most recent, the action at step `t` is scored against
    the `k`-th most recent card, the one dealt `t - k + 1`-th (so `k = 1` repeats
    the card in view), as POPGym's `RepeatPrevious.step` scores `hand[-k]`:

    - while fewer than `k` cards have been seen the reward is `0`;
    - afterwards it is `+1 / (num_cards - k)` for the right suit and
        `-1 / (num_cards - k)` for a wrong one.

    One card is dealt at reset, so an episode has `num_cards - 1` steps, of which
    `num_cards - k` are scored: the episode return lies in `[-1, 1]`, `1` for a
    perfect memory and `-1/2` in expectation for a uniformly random policy. The
    episode ends when the deck is exhausted, which is a *termination* (the task is
    over), never a truncation.

    The deck is dealt lazily (each card is drawn uniformly from the cards left),
    which gives the same sequences as shuffling it up front at a constant cost per
    step and per reset.

    `params` are gymnax's `EnvParams`; their `max_steps_in_episode` states the
    episode length `num_cards - 1` for algorithms that want it, but the length is
    fixed by the deck.

    **Arguments:**

    - `num_decks`: the number of 52-card decks shuffled together (POPGym's
        Easy/Medium/Hard use 1/2/3).
    - `k`: which card to repeat, counting the card in view as 1 (POPGym's
        Easy/Medium/Hard use 4/32/64). Must satisfy `1 <= k < num_decks * 52`.

    All keyword only; the defaults are `num_decks=1`, `k=4`.
    """

    num_decks: int
    k: int

    def __init__(self, *, num_decks: int = 1, k: int = 4):
        super().__init__()
        num_decks = _as_int("num_decks", num_decks)
        k = _as_int("k", k)
        if num_decks < 1:
            raise ValueError(f"num_decks must be at least 1, got {num_decks}.")
        num_cards = num_decks * _DECK_SIZE
        if not 1 <= k < num_cards:
            raise ValueError(
                f"k must satisfy 1 <= k < num_decks * 52 = {num_cards}, got k={k}."
            )
        self.num_decks = num_decks
        self.k = k

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
    ) -> tuple[Float[Array, "4"], RepeatPreviousState]:
        """Gathers the deck and deals its first card."""
        del params
        full = jnp.full((_NUM_SUITS,), self.num_cards // _NUM_SUITS, dtype=jnp.int32)
        suit, remaining = _deal(key, full)
        history = jnp.zeros((self.k,), dtype=jnp.int32).at[0].set(suit)
        time = jnp.array(0, dtype=jnp.int32)
        state = RepeatPreviousState(history=history, remaining=remaining, time=time)
        return _one_hot(suit), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: RepeatPreviousState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "4"],
        RepeatPreviousState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Scores `action` against the `k`-th most recent card, then deals one."""
        del params
        action = jnp.asarray(action).astype(jnp.int32)
        target = state.history[(state.time - (self.k - 1)) % self.k]
        scale = 1.0 / (self.num_cards - self.k)
        reward = jnp.where(action == target, scale, -scale)
        reward = jnp.where(state.time >= self.k - 1, reward, 0.0).astype(jnp.float32)
        suit, remaining = _deal(key, state.remaining)
        time = state.time + 1
        # The slot written held the card dealt `k` steps before this one, which
        # the action just taken was the last to need.
        history = state.history.at[time % self.k].set(suit)
        state = RepeatPreviousState(history=history, remaining=remaining, time=time)
        # One card was dealt at reset and one per step: the last is dealt now.
        terminated = time >= self.num_cards - 1
        return _one_hot(suit), state, reward, terminated, {}

    def is_truncated(self, state: RepeatPreviousState, params: Any) -> Bool[Array, ""]:
        """Always `False`: the episode ends by termination when the deck runs out."""
        del state, params
        return jnp.array(False)

    def is_terminated(self, state: RepeatPreviousState, params: Any) -> Bool[Array, ""]:
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
                "history": spaces.Box(0, _NUM_SUITS - 1, (self.k,), jnp.int32),
                "remaining": spaces.Box(
                    0, self.num_cards // _NUM_SUITS, (_NUM_SUITS,), jnp.int32
                ),
                "time": spaces.Discrete(self.num_cards),
            }
        )


class RepeatPreviousEasy(RepeatPrevious):
    """POPGym's Repeat Previous Easy: one deck (51 steps), `k = 4`."""

    def __init__(self):
        super().__init__(num_decks=1, k=4)


class RepeatPreviousMedium(RepeatPrevious):
    """POPGym's Repeat Previous Medium: two decks (103 steps), `k = 32`."""

    def __init__(self):
        super().__init__(num_decks=2, k=32)


class RepeatPreviousHard(RepeatPrevious):
    """POPGym's Repeat Previous Hard: three decks (155 steps), `k = 64`."""

    def __init__(self):
        super().__init__(num_decks=3, k=64)
