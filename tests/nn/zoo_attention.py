"""Attention models for the shared contract: `SelfAttention` bare, with RoPE, with
ALiBi, with a context shorter than the test sequences, inside
`SegmentRecurrence`, and the `LearnablePositionalEmbedding` layer."""

from memrl_eqx.nn._attention import SelfAttention
from memrl_eqx.nn._positional import ALiBi, LearnablePositionalEmbedding, RoPE
from memrl_eqx.nn._segment_recurrence import SegmentRecurrence

from .zoo_core import IN, OUT


def _attention(key, **kwargs):
    config = dict(in_features=IN, features=OUT, num_heads=2, context_length=16)
    return SelfAttention(**config | kwargs, key=key)


MODELS = {
    "attention": lambda key: _attention(key),
    # head_dim 4 (RoPE needs it even), set apart from features // num_heads = 3.
    "attention_rope": lambda key: _attention(
        key, head_dim=4, positional_embedding=RoPE()
    ),
    # Three heads: ALiBi's slopes for a head count that is not a power of two.
    "attention_alibi": lambda key: _attention(
        key, num_heads=3, positional_embedding=ALiBi(3)
    ),
    # The contract's sequences (T = 12) are longer than the window.
    "attention_context_3": lambda key: _attention(
        key, context_length=3, head_dim=2, positional_embedding=RoPE()
    ),
    "segment_recurrence": lambda key: SegmentRecurrence(
        _attention(key, context_length=5, positional_embedding=ALiBi(2)),
        memory_length=3,
        features=IN,
    ),
    "learnable_positional_embedding": lambda key: LearnablePositionalEmbedding(
        num_embeddings=64, features=IN, key=key
    ),
}
