"""`CNN`: a convolutional feature extractor for one image observation."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, Shaped

from ._linear import Linear


def _per_layer(name: str, value, num_layers: int) -> tuple[int, ...]:
    if isinstance(value, int):
        values = (value,) * num_layers
    else:
        values = tuple(value)
    if len(values) != num_layers or any(
        not isinstance(v, int) or v < 1 for v in values
    ):
        raise ValueError(
            f"CNN: `{name}` must be a positive int or one positive int per layer "
            f"({num_layers} layers); got {value}."
        )
    return values


def _conv_output_size(size: int, kernel_size: int, stride: int, padding) -> int:
    """The spatial size after a convolution (as `jax.lax.conv_general_dilated`):
    `ceil(size / stride)` for `"SAME"`, `(size + 2 * p - kernel_size) // stride + 1`
    for `"VALID"` (p = 0) or an int padding `p`."""
    if padding == "SAME":
        return -(-size // stride)
    p = 0 if padding == "VALID" else padding
    return (size + 2 * p - kernel_size) // stride + 1


class CNN(eqx.Module):
    """Convolutions over one image observation, flattened to a feature vector.

    Takes one observation in channels-last layout, shape
    `image_shape = (height, width, channels)` as gymnax gives it (MinAtar's
    `(10, 10, 4)`); booleans and integers are cast to float32. Each layer is a
    2-D convolution (`eqx.nn.Conv2d`, channels-first, so the image is transposed
    inside) followed by `activation`. The last map is flattened in
    `(height, width, channels)` order; if `features` is given, a final `Linear`
    to `features` (then `activation`) follows.

    The output width `out_features` is known at construction (this is why the
    constructor takes the whole `image_shape`), so it can size the torso:
    `GRUCell(in_features=cnn.out_features, ...)`.

    **Arguments** (keyword only):

    - `image_shape`: `(height, width, channels)` of one observation;
    - `channels`: output channels of each layer (default `(16, 32)`);
    - `kernel_sizes`: one int for every layer or one per layer (default 3);
    - `strides`: likewise (default 1);
    - `padding`: `"SAME"` (default; spatial size `ceil(size / stride)`),
      `"VALID"` or an int;
    - `activation`: default ReLU;
    - `features`: the width of an optional final `Linear` (default None: none);
    - `key`.

    Convolutions use `eqx.nn.Conv2d`'s initialisation, the final `Linear` is
    orthogonal with scale $\\sqrt 2$.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    from memrl_eqx.nn import CNN, FeatureExtractor

    cnn = CNN(image_shape=(10, 10, 4), features=64, key=jax.random.key(0))
    obs = jnp.zeros((10, 10, 4), bool)  # one MinAtar observation
    assert cnn(obs).shape == (cnn.out_features,) == (64,)
    extractor = FeatureExtractor(observation_extractor=cnn)
    ```
    """

    layers: tuple[eqx.nn.Conv2d, ...]
    linear: Linear | None
    activation: Callable[[Array], Array] = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        image_shape: Sequence[int],
        channels: Sequence[int] = (16, 32),
        kernel_sizes: int | Sequence[int] = 3,
        strides: int | Sequence[int] = 1,
        padding: str | int = "SAME",
        activation: Callable[[Array], Array] = jax.nn.relu,
        features: int | None = None,
        key: PRNGKeyArray,
    ):
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or any(
            not isinstance(s, int) or s < 1 for s in image_shape
        ):
            raise ValueError(
                "CNN: `image_shape` must be (height, width, channels) of positive "
                f"ints; got {image_shape}."
            )
        channels = tuple(channels)
        if len(channels) == 0 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(
                f"CNN: `channels` must be a non-empty sequence of positive ints; "
                f"got {channels}."
            )
        kernel_sizes = _per_layer("kernel_sizes", kernel_sizes, len(channels))
        strides = _per_layer("strides", strides, len(channels))
        if isinstance(padding, str):
            padding = padding.upper()
        if not (
            padding in ("SAME", "VALID") or (type(padding) is int and padding >= 0)
        ):
            raise ValueError(
                f"CNN: `padding` must be 'SAME', 'VALID' or a non-negative int; "
                f"got {padding!r}."
            )
        if features is not None and features < 1:
            raise ValueError(f"CNN: `features` must be positive; got {features}.")

        height, width, in_channels = image_shape
        keys = jr.split(key, len(channels) + 1)
        layers = []
        for c, k, s, layer_key in zip(channels, kernel_sizes, strides, keys):
            layers.append(
                eqx.nn.Conv2d(
                    in_channels, c, k, stride=s, padding=padding, key=layer_key
                )
            )
            height = _conv_output_size(height, k, s, padding)
            width = _conv_output_size(width, k, s, padding)
            if height < 1 or width < 1:
                raise ValueError(
                    f"CNN: an image of shape {image_shape} is too small for layer "
                    f"{len(layers)} (kernel_size={k}, stride={s}, "
                    f"padding={padding!r}): the map would be empty."
                )
            in_channels = c
        self.layers = tuple(layers)
        flat = height * width * in_channels
        if features is None:
            self.linear = None
            self.out_features = flat
        else:
            self.linear = Linear(flat, features, key=keys[-1])
            self.out_features = features
        self.activation = activation
        self.image_shape = image_shape

    @jax.named_scope("memrl_eqx.nn.CNN")
    def __call__(
        self,
        x: Shaped[Array, "height width channels"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, " out_features"]:
        if x.shape != self.image_shape:
            raise ValueError(
                f"CNN: expected one observation of shape {self.image_shape} "
                f"(height, width, channels); got {x.shape}. Batch with jax.vmap."
            )
        h = jnp.transpose(x.astype(jnp.float32), (2, 0, 1))
        for layer in self.layers:
            h = self.activation(layer(h))
        h = jnp.ravel(jnp.transpose(h, (1, 2, 0)))
        if self.linear is not None:
            h = self.activation(self.linear(h))
        return h
