"""Type aliases shared across memrl_eqx."""

from typing import Any, TypeAlias

from jaxtyping import Array, Bool, Float, PyTree


Carry: TypeAlias = PyTree[Any]
"""A recurrent state: any PyTree of arrays (possibly empty, `()`)."""

Element: TypeAlias = PyTree[Array]
"""An element of a memory monoid: a PyTree of arrays."""

Inputs: TypeAlias = Float[Array, "time in_features"]
Outputs: TypeAlias = Float[Array, "time out_features"]
Resets: TypeAlias = Bool[Array, " time"]
