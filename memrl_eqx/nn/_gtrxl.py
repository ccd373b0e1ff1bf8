"""`GTrXL`: the gated transformer-XL torso (Parisotto et al. 2020)."""

import jax.random as jr
from jaxtyping import PRNGKeyArray

from ._attention import SelfAttention
from ._ffn import FFN
from ._gated_residual import GatedResidual
from ._norm import PreNorm
from ._positional import ALiBi
from ._projection import Projection
from ._repeat import Repeat
from ._segment_recurrence import SegmentRecurrence
from ._stack import Stack


def GTrXL(
    *,
    in_features: int,
    features: int,
    num_layers: int = 2,
    num_heads: int = 4,
    context_length: int = 64,
    memory_length: int = 64,
    expansion_factor: int = 4,
    key: PRNGKeyArray,
) -> Stack:
    """A GTrXL torso: `num_layers` layers, each

    `GatedResidual(PreNorm(SegmentRecurrence(SelfAttention(ALiBi))))` followed by
    `GatedResidual(PreNorm(FFN))`, every layer with its own weights and scanned
    over layers (`Repeat`); a `Projection` from `in_features` to `features` comes
    first. Each step attends to itself and the previous
    `min(context_length, memory_length)` steps of its episode; the memory holds
    the layer inputs with no gradient into them (Transformer-XL).

    **Arguments** (keyword only):

    - `in_features`: the width of the inputs;
    - `features`: the model width, of every layer and of the outputs;
    - `num_layers`: the number of layers (default 2);
    - `num_heads`: attention heads per layer (default 4; must divide `features`);
    - `context_length`: the attention window, in past steps (default 64);
    - `memory_length`: the steps of layer inputs each layer keeps in its memory
      (default 64);
    - `expansion_factor`: the `FFN`'s hidden width over `features` (default 4);
    - `key`.

    **Returns:** a [`memrl_eqx.nn.Stack`][] (a sequence model whose carry is its
    parts' carries) mapping `(time, in_features)` to `(time, features)`.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import GTrXL

    torso = GTrXL(
        in_features=4,
        features=16,
        num_layers=1,
        num_heads=2,
        context_length=8,
        memory_length=8,
        key=jax.random.key(0),
    )
    xs, resets = jnp.ones((5, 4)), jnp.zeros(5, bool)
    carry, ys = torso(torso.init_carry(), xs, resets)
    assert ys.shape == (5, 16)
    carry, ys = torso(carry, xs, resets)  # the next 5 steps attend to these
    ```
    """
    k_in, k_layers = jr.split(key)

    def layer(key):
        k_attention, k_gate1, k_ffn, k_gate2 = jr.split(key, 4)
        attention = SelfAttention(
            in_features=features,
            features=features,
            num_heads=num_heads,
            context_length=context_length,
            positional_embedding=ALiBi(num_heads),
            key=k_attention,
        )
        memory = SegmentRecurrence(attention, memory_length=memory_length)
        ffn = FFN(features=features, expansion_factor=expansion_factor, key=k_ffn)
        return [
            GatedResidual(PreNorm(memory), key=k_gate1),
            GatedResidual(PreNorm(ffn), key=k_gate2),
        ]

    projection = Projection(in_features=in_features, features=features, key=k_in)
    return Stack([projection, Repeat(layer, num_layers=num_layers, key=k_layers)])
