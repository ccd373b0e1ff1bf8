"""`SequenceModelWrapper`: a feed-forward module as a sequence model."""

from collections.abc import Callable

import jax
from jaxtyping import Array, Bool, Float

from ._misc import check_sequence
from ._sequence_model import AbstractSequenceModel


class SequenceModelWrapper(AbstractSequenceModel):
    """Makes a per-step feed-forward module a sequence model with an empty carry.

    `module` maps one input `(in_features,)` to one output; it is applied to every
    step independently, so resets have nothing to clear and the carry is `()`.
    A memoryless agent is a network whose torso is such a wrapper.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import MLP, SequenceModelWrapper

    mlp = MLP(in_features=8, features=(32,), key=jax.random.key(0))
    torso = SequenceModelWrapper(mlp)
    carry, ys = torso(torso.init_carry(), jnp.ones((5, 8)), jnp.zeros(5, bool))
    assert carry == () and ys.shape == (5, 32)
    ```
    """

    module: Callable[[Array], Array]
    """Applied to each step; if it has an integer `in_features`, inputs are
    checked against it."""

    @property
    def in_features(self) -> int | None:
        """The width of the inputs, if the wrapped module declares it."""
        return getattr(self.module, "in_features", None)

    def init_carry(self) -> tuple[()]:
        return ()

    def __call__(
        self,
        carry: tuple[()],
        xs: Float[Array, "time in_features"],
        resets: Bool[Array, " time"],
    ) -> tuple[tuple[()], Float[Array, "time out_features"]]:
        in_features = getattr(self.module, "in_features", None)
        if isinstance(in_features, int):
            name = f"SequenceModelWrapper({type(self.module).__name__})"
            check_sequence(name, xs, resets, in_features)
        elif xs.ndim != 2 or resets.shape != xs.shape[:1]:
            raise ValueError(
                "SequenceModelWrapper: expected `xs` of shape (time, features) and "
                f"`resets` of shape (time,); got {xs.shape} and {resets.shape}."
            )
        return (), jax.vmap(self.module)(xs)


def as_sequence_model(module) -> AbstractSequenceModel:
    """`module` itself if it is a sequence model, else `SequenceModelWrapper(module)`
    (a per-step module applied at every step, with an empty carry)."""
    if isinstance(module, AbstractSequenceModel):
        return module
    return SequenceModelWrapper(module)
