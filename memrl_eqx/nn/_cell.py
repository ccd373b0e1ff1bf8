"""Step cells: one time step of a recurrence, run over sequences by `RNN`."""

import abc

import equinox as eqx
from equinox import AbstractVar
from jaxtyping import Array, Float, PyTree

from .._custom_types import Carry


class AbstractCell(eqx.Module):
    """A recurrent cell acting on one time step: `carry, y = cell(carry, x)`.

    A step is split in two so that `RNN` can run the part that depends on the
    input alone for all time steps at once (one large matrix product) and keep only
    the recurrence inside its sequential scan:

    - `input_projection(x) -> u` depends on `x` only (return `x` if there is
      nothing to precompute);
    - `recurrence(carry, u) -> (carry, y)` is the sequential part.

    `cell(carry, x)` is `recurrence(carry, input_projection(x))`. Cells are
    unbatched: `x` has shape `(in_features,)`.

    A subclass declares the field `in_features` and implements `init_carry`,
    `input_projection` and `recurrence`; [`memrl_eqx.nn.RNN`][] runs it over
    sequences, with resets and batching.

    **Example:** an exponential moving average of a linear map of the inputs,
    $h_t = d\\,h_{t-1} + (1 - d)\\,W x_t$.

    ```python
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from memrl_eqx.nn import AbstractCell, RNN


    class EMACell(AbstractCell):
        weight: jax.Array
        decay: float = eqx.field(static=True)
        in_features: int = eqx.field(static=True)

        def __init__(self, in_features, features, decay, *, key):
            self.weight = jax.random.normal(key, (features, in_features))
            self.decay = decay
            self.in_features = in_features

        def init_carry(self):
            return jnp.zeros(self.weight.shape[0])

        def input_projection(self, x):
            return self.weight @ x  # computed for every step at once by `RNN`

        def recurrence(self, carry, u):
            h = self.decay * carry + (1 - self.decay) * u
            return h, h


    rnn = RNN(EMACell(4, 8, decay=0.9, key=jax.random.key(0)))
    carry, ys = rnn(rnn.init_carry(), jnp.ones((5, 4)), jnp.zeros(5, bool))
    assert ys.shape == (5, 8)
    ```
    """

    in_features: AbstractVar[int]

    @abc.abstractmethod
    def init_carry(self) -> Carry:
        """The carry at the start of an episode."""

    @abc.abstractmethod
    def input_projection(self, x: Float[Array, " in_features"]) -> PyTree[Array]:
        """The part of a step that depends on the input alone."""

    @abc.abstractmethod
    def recurrence(
        self, carry: Carry, u: PyTree[Array]
    ) -> tuple[Carry, Float[Array, " out_features"]]:
        """The sequential part of a step, given `u = input_projection(x)`."""

    def __call__(
        self, carry: Carry, x: Float[Array, " in_features"]
    ) -> tuple[Carry, Float[Array, " out_features"]]:
        """One step: returns the new carry and the output, shape `(out_features,)`."""
        return self.recurrence(carry, self.input_projection(x))
