"""Playing cards for POPGym's card tasks, dealt lazily in JAX.

POPGym's deck holds `num_decks` standard decks of 52 cards. Each card has a suit
(4, 13 cards each per deck), a rank (13, ace low to king, 4 cards each per deck)
and a colour (2, 26 cards each per deck; POPGym's suits `0, 2` are black and
`1, 3` red). Every task observes or asks about one of these attributes only, so a
shuffled deck is dealt here as a sequence of *kinds* (suits, ranks or colours):
each card is drawn uniformly from the cards left, tracked as a count per kind.
This deals the sequences a shuffle up front would, with the same probabilities (up
to a modulo bias below `num_cards / 2**32`), at a constant cost per card and with
no `(num_cards,)`-sized work at reset.
"""

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._validation import _as_int


_DECK_SIZE = 52
_NUM_SUITS = 4
_NUM_RANKS = 13
_NUM_COLORS = 2


def _check_num_decks(num_decks: Any) -> int:
    """Validates a number of 52-card decks (at least one)."""
    num_decks = _as_int("num_decks", num_decks)
    if num_decks < 1:
        raise ValueError(f"num_decks must be at least 1, got {num_decks}.")
    return num_decks


def _full_deck(num_cards: int, num_kinds: int) -> Int[Array, " kinds"]:
    """The counts per kind of a gathered deck of `num_cards` cards, each kind equally
    often (`num_cards` must be a multiple of `num_kinds`)."""
    return jnp.full((num_kinds,), num_cards // num_kinds, dtype=jnp.int32)


def _deal(
    key: PRNGKeyArray, remaining: Int[Array, " kinds"]
) -> tuple[Int[Array, ""], Int[Array, " kinds"]]:
    """Draws a card uniformly from those remaining, given as a count per kind:
    returns its kind and the counts left. Dealing a shuffled deck card by card is
    this.

    The deck must not be empty; if it is, the kind returned is the last one and its
    count goes negative, so callers that may deal past the end discard the result.
    """
    # One 32-bit draw reduced modulo the cards left: the modulo bias is below
    # `num_cards / 2**32` (under 1e-6 for any deck here), and it costs one hash
    # where `jax.random.randint` costs three.
    total = jnp.maximum(jnp.sum(remaining), 1).astype(jnp.uint32)
    bits = jax.random.bits(key, (), dtype=jnp.uint32)
    position = (bits % total).astype(jnp.int32)
    kind = jnp.sum(jnp.cumsum(remaining) <= position).astype(jnp.int32)
    kind = jnp.minimum(kind, remaining.shape[0] - 1)  # only reached on an empty deck
    return kind, remaining.at[kind].add(-1)


def _one_hot(
    index: Int[Array, ""], num_classes: int = _NUM_SUITS
) -> Float[Array, " n"]:
    """`index` one-hot in `num_classes` float32 entries (a suit by default)."""
    return jax.nn.one_hot(index, num_classes, dtype=jnp.float32)
