from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._validation import _as_int


_DECK_SIZE = 52
_NUM_RANKS = 13
_NUM_SUITS = 4
_NUM_COLORS = 2
# What a card's value is, for each `deck_type`: how many values there are.
_NUM_VALUES = {"colors": _NUM_COLORS, "ranks": _NUM_RANKS}


class ConcentrationState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.Concentration`][] episode (the
    information POPGym's `Concentration.get_state` gives, and the time).

    **Fields:**

    - `values`: the value of the card at each position of the table, in
        `0..num_values - 1` (its colour or its rank, depending on `deck_type`).
        Shape `(num_cards,)`, dtype int32.
    - `face_up`: which cards have been matched and stay face up. Shape
        `(num_cards,)`, dtype bool.
    - `first`: the position of the card turned over earlier in the current turn,
        or `-1` when the next card turned starts a turn. Shape `()`, dtype int32.
    - `time`: the number of steps taken. Shape `()`, dtype int32, in
        `0..2 * num_cards`.
    """

    values: Int[Array, " num_cards"]
    face_up: Bool[Array, " num_cards"]
    first: Int[Array, ""]
    time: Int[Array, ""]


class Concentration(environment.Environment[ConcentrationState, Any]):
    """POPGym's Concentration: the card game of matching pairs among face-down
    cards, one card turned per step.

    A deck of `num_decks * 52` cards is shuffled and laid face down. A turn turns
    over two cards, one per step; the action is the position of the card to turn,
    in `0..num_cards - 1`. Two cards match when they are at different positions
    and share a value: their colour (`deck_type="colors"`, two values, `26 *
    num_decks` cards of each) or their rank (`deck_type="ranks"`, 13 values,
    `4 * num_decks` cards of each). A matched pair stays face up for the rest of
    the episode; otherwise both cards are turned face down again after the step
    that showed the second. The task tests memory of where the cards seen so far
    lie.

    The observation is the table, one card after another, each card one-hot over
    `num_values + 1` symbols: its value if it is face up (matched, or turned over
    in the current turn, including by the action just taken) and `num_values`
    if it is face down. It is `Float[Array, "num_cards * (num_values + 1)"]`, the
    card at position `i` in entries `i * (num_values + 1)` to
    `(i + 1) * (num_values + 1) - 1`.

    Rewards, with `L = 2 * num_cards` the episode length (POPGym's
    `ceil(2 n - n / (2 n - 1))` for `n` cards, which is `2 n`):

    - turning over a card that is already matched is a mistake: the turn ends at
        once, every card turned in it goes face down, and the reward is `-1 / L`
        per card turned in the turn (`-1 / L` or `-2 / L`);
    - otherwise the first card of a turn is rewarded `0`, and the second
        `+1 / (num_cards / 2)` if it matches the first, `-2 / L` if it does not
        (turning the same card twice does not match).

    A perfect memory could match every pair, earning the return `1`, and each
    turned card costs at most `1 / L`, so the episode return lies in `[-1, 1]`.
    The episode *terminates* when every pair has been matched (which takes at
    least `num_cards` steps) and is *truncated* after `L` steps
    (`params.max_steps_in_episode`, gymnax's `EnvParams`).

    The table is dealt at reset by a random permutation of the deck's values,
    the same distribution as POPGym's shuffled deck. Ties between rewards and
    termination follow POPGym's step.

    **Arguments:**

    - `num_decks`: the number of 52-card decks laid out together (POPGym's
        Easy/Medium/Hard use 1/2/1). Must be at least 1.
    - `deck_type`: what two cards must share to match, `"colors"` or
        `"ranks"` (POPGym's Easy/Medium/Hard use colors/colors/ranks).

    All keyword only; the defaults are `num_decks=1`, `deck_type="ranks"`.
    """

    num_decks: int
    deck_type: str

    def __init__(self, *, num_decks: int = 1, deck_type: str = "ranks"):
        super().__init__()
        num_decks = _as_int("num_decks", num_decks)
        if num_decks < 1:
            raise ValueError(f"num_decks must be at least 1, got {num_decks}.")
        if deck_type not in _NUM_VALUES:
            raise ValueError(
                f"deck_type must be 'colors' or 'ranks', got {deck_type!r}."
            )
        self.num_decks = num_decks
        self.deck_type = deck_type

    @property
    def num_cards(self) -> int:
        """The number of cards on the table, `num_decks * 52`."""
        return self.num_decks * _DECK_SIZE

    @property
    def num_values(self) -> int:
        """The number of distinct values cards are matched on: 2 colours or 13
        ranks."""
        return _NUM_VALUES[self.deck_type]

    @property
    def max_steps_in_episode(self) -> int:
        """The episode length `L = 2 * num_cards`."""
        return 2 * self.num_cards

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.max_steps_in_episode)

    def _deck_values(self) -> Int[Array, " num_cards"]:
        """The values of an unshuffled deck; only their multiset matters."""
        if self.deck_type == "colors":
            values = np.arange(self.num_cards) % _NUM_COLORS
        else:
            values = (np.arange(self.num_cards) // _NUM_SUITS) % _NUM_RANKS
        return jnp.asarray(values, dtype=jnp.int32)

    def _observe(
        self, values: Int[Array, " num_cards"], visible: Bool[Array, " num_cards"]
    ) -> Float[Array, " obs_size"]:
        symbols = jnp.where(visible, values, self.num_values)
        return jax.nn.one_hot(symbols, self.num_values + 1, dtype=jnp.float32).ravel()

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, " obs_size"], ConcentrationState]:
        """Shuffles the deck and lays it face down."""
        del params
        values = jax.random.permutation(key, self._deck_values())
        face_up = jnp.zeros((self.num_cards,), dtype=jnp.bool_)
        state = ConcentrationState(
            values=values,
            face_up=face_up,
            first=jnp.array(-1, dtype=jnp.int32),
            time=jnp.array(0, dtype=jnp.int32),
        )
        return self._observe(values, face_up), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: ConcentrationState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, " obs_size"],
        ConcentrationState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Turns over the card at position `action`."""
        del key
        card = jnp.asarray(action).astype(jnp.int32)
        first = state.first
        has_first = first >= 0
        first_index = jnp.maximum(first, 0)  # a valid index even without a first
        positions = jnp.arange(self.num_cards, dtype=jnp.int32)
        in_play = (positions == card) | (has_first & (positions == first))
        # The card just turned is shown, whatever happens to it next.
        obs = self._observe(state.values, state.face_up | in_play)

        length = jnp.asarray(params.max_steps_in_episode).astype(jnp.float32)
        failure = -jnp.reciprocal(length)
        success = jnp.float32(2.0 / self.num_cards)
        # A card that is face up can only be a matched one: the first card of a
        # turn is never kept in play when it was already matched.
        already_matched = state.face_up[card]
        matched = (
            ~already_matched
            & has_first
            & (first != card)
            & (state.values[first_index] == state.values[card])
        )
        num_in_play = jnp.where(has_first, 2.0, 1.0).astype(jnp.float32)
        reward = jnp.where(
            already_matched,
            failure * num_in_play,
            jnp.where(has_first, jnp.where(matched, success, 2 * failure), 0.0),
        ).astype(jnp.float32)

        face_up = state.face_up | (matched & in_play)
        # A turn goes on only after a first card that was not already matched.
        starts_turn = ~has_first & ~already_matched
        first = jnp.where(starts_turn, card, -1).astype(jnp.int32)
        state = ConcentrationState(
            values=state.values, face_up=face_up, first=first, time=state.time + 1
        )
        terminated = jnp.all(face_up)
        return obs, state, reward, terminated, {}

    def is_truncated(self, state: ConcentrationState, params: Any) -> Bool[Array, ""]:
        """Whether `params.max_steps_in_episode` steps have been taken."""
        return state.time >= params.max_steps_in_episode

    def is_terminated(self, state: ConcentrationState, params: Any) -> Bool[Array, ""]:
        """Whether every pair has been matched."""
        del params
        return jnp.all(state.face_up)

    @property
    def num_actions(self) -> int:
        return self.num_cards

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(num_cards)`: the position of the card to turn over."""
        return spaces.Discrete(self.num_cards)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (num_cards * (num_values + 1),), float32)`: every card's
        value or the face-down symbol, one-hot."""
        size = self.num_cards * (self.num_values + 1)
        return spaces.Box(0.0, 1.0, (size,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "values": spaces.Box(
                    0, self.num_values - 1, (self.num_cards,), jnp.int32
                ),
                "face_up": spaces.Box(0, 1, (self.num_cards,), jnp.bool_),
                "first": spaces.Box(-1, self.num_cards - 1, (), jnp.int32),
                "time": spaces.Discrete(self.max_steps_in_episode + 1),
            }
        )


class ConcentrationEasy(Concentration):
    """POPGym's Concentration Easy: one deck (52 cards), matched on colour; 104
    steps."""

    def __init__(self):
        super().__init__(num_decks=1, deck_type="colors")


class ConcentrationMedium(Concentration):
    """POPGym's Concentration Medium: two decks (104 cards), matched on colour; 208
    steps."""

    def __init__(self):
        super().__init__(num_decks=2, deck_type="colors")


class ConcentrationHard(Concentration):
    """POPGym's Concentration Hard: one deck (52 cards), matched on rank; 104
    steps."""

    def __init__(self):
        super().__init__(num_decks=1, deck_type="ranks")
