"""Ready-made actor and critic networks for any torso, by name.

The command line, the tests and quick experiments build agents from here;
`TORSOS` maps a torso name to a factory, so a new sequence model joins the CLI
by adding one line.
"""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.random as jr
import numpy as np
from gymnax.environments.environment import Environment
from jaxtyping import Array, PRNGKeyArray, PyTree

from . import nn as mnn
from .algorithms._checks import check_torso
from .nn import heads


TorsoFactory = Callable[[int, int, PRNGKeyArray], mnn.AbstractSequenceModel]

TORSOS: dict[str, TorsoFactory] = {
    "gru": lambda i, f, key: mnn.RNN(mnn.GRUCell(in_features=i, features=f, key=key)),
    "lstm": lambda i, f, key: mnn.RNN(mnn.LSTMCell(in_features=i, features=f, key=key)),
    "lru": lambda i, f, key: mnn.Memoroid(
        mnn.LRUCell(in_features=i, features=f, hidden_dim=f, key=key)
    ),
    "mlp": lambda i, f, key: mnn.SequenceModelWrapper(
        mnn.MLP(in_features=i, features=(f,), key=key)
    ),
    "slstm": lambda i, f, key: mnn.RNN(
        mnn.sLSTMCell(in_features=i, features=f, hidden_dim=f, key=key)
    ),
    "shm": lambda i, f, key: mnn.RNN(
        mnn.SHMCell(in_features=i, features=f, output_features=f, key=key)
    ),
    "rtu": lambda i, f, key: mnn.RNN(
        mnn.RTUCell(in_features=i, features=f, hidden_dim=f, key=key)
    ),
    "elman": lambda i, f, key: mnn.RNN(
        mnn.ElmanCell(in_features=i, features=f, key=key)
    ),
    "indrnn": lambda i, f, key: mnn.RNN(
        mnn.IndRNNCell(in_features=i, features=f, key=key)
    ),
    "mgu": lambda i, f, key: mnn.RNN(mnn.MGUCell(in_features=i, features=f, key=key)),
    "dnc": lambda i, f, key: mnn.RNN(
        mnn.DNCCell(in_features=i, features=f, hidden_dim=f, key=key)
    ),
    "mlstm": lambda i, f, key: mnn.Memoroid(
        mnn.mLSTMCell(in_features=i, features=f, hidden_dim=2 * f, key=key)
    ),
    "mamba2": lambda i, f, key: mnn.Memoroid(
        mnn.Mamba2Cell(in_features=i, features=f, key=key)
    ),
    "mamba3": lambda i, f, key: mnn.Memoroid(
        mnn.Mamba3Cell(in_features=i, features=f, key=key)
    ),
    "xlstm": lambda i, f, key: mnn.xLSTM(in_features=i, features=f, key=key),
    "self_attention": lambda i, f, key: mnn.SelfAttention(
        in_features=i,
        features=f,
        num_heads=4,
        context_length=64,
        positional_embedding=mnn.ALiBi(4),
        key=key,
    ),
    "gtrxl": lambda i, f, key: mnn.GTrXL(in_features=i, features=f, key=key),
    "moe_gru": lambda i, f, key: mnn.MoE(
        [
            mnn.RNN(mnn.GRUCell(in_features=i, features=f, key=k))
            for k in jr.split(key, 4)
        ],
        mnn.TopKRouter(in_features=i, num_experts=4, k=2, key=jr.fold_in(key, 4)),
    ),
    "rtrl_lru": lambda i, f, key: mnn.RTRL(
        mnn.Memoroid(
            mnn.LRUCell(
                in_features=i, features=f, hidden_dim=f, r_min=0.9, r_max=0.999, key=key
            )
        )
    ),
    "s5": lambda i, f, key: mnn.Memoroid(
        mnn.S5Cell(in_features=i, features=f, hidden_dim=f, key=key)
    ),
    "min_gru": lambda i, f, key: mnn.Memoroid(
        mnn.MinGRUCell(in_features=i, features=f, key=key)
    ),
    "ffm": lambda i, f, key: mnn.Memoroid(
        mnn.FFMCell(
            in_features=i,
            features=f,
            memory_size=max(f // 2, 1),
            context_size=f,
            key=key,
        )
    ),
    "linear_attention": lambda i, f, key: mnn.Memoroid(
        mnn.LinearAttentionCell(
            in_features=i, features=f, num_heads=4, head_dim=max(f // 4, 1), key=key
        )
    ),
    "delta_net": lambda i, f, key: mnn.Memoroid(
        mnn.DeltaNetCell(
            in_features=i, features=f, num_heads=4, head_dim=max(f // 4, 1), key=key
        )
    ),
    "gated_delta_net": lambda i, f, key: mnn.Memoroid(
        mnn.GatedDeltaNetCell(
            in_features=i, features=f, num_heads=4, head_dim=max(f // 4, 1), key=key
        )
    ),
}
"""Torso factories `(in_features, features, key) -> sequence model`, by name."""

Torso = (
    str
    | mnn.AbstractSequenceModel
    | Callable[[PRNGKeyArray], mnn.AbstractSequenceModel]
)
"""What the builders take as `torso`: a name of `TORSOS`, a sequence model, or a
function of a PRNG key returning one (so that each network gets its own)."""


def make_torso(
    name: str, *, in_features: int, features: int, key: PRNGKeyArray
) -> mnn.AbstractSequenceModel:
    """Build the torso called `name`: a sequence model from `in_features` to
    `features` per step.

    The torsos are the factories of [`memrl_eqx.TORSOS`][] (the command line's
    `--torso`): recurrent cells under [`memrl_eqx.nn.RNN`][] (`"gru"`, `"lstm"`,
    `"slstm"`, `"shm"`, `"rtu"`, `"elman"`, `"indrnn"`, `"mgu"`, `"dnc"`),
    memoroid cells under [`memrl_eqx.nn.Memoroid`][] (`"lru"`, `"mlstm"`,
    `"mamba2"`, `"s5"`, `"min_gru"`, `"ffm"`, `"linear_attention"`,
    `"delta_net"`, `"gated_delta_net"`), attention (`"self_attention"`, `"gtrxl"`),
    `"xlstm"`, a mixture of GRU experts (`"moe_gru"`), an LRU trained by
    real-time recurrent learning (`"rtrl_lru"`) and a memoryless `"mlp"`. Hidden
    sizes follow `features` (e.g. an LRU's `hidden_dim` is `features`; the
    attention torsos use 4 heads).

    **Arguments:**

    - `name`: a key of `TORSOS`.
    - `in_features`: the size of each step's input (keyword only).
    - `features`: the size of each step's output, and the width of the torso's
      hidden layers (keyword only).
    - `key`: a PRNG key for the initial parameters (keyword only).

    **Returns:** a [`memrl_eqx.nn.AbstractSequenceModel`][]:
    `carry, ys = torso(carry, xs, resets)` with `xs` of shape
    `(time, in_features)`, `resets` of shape `(time,)` and `ys` of shape
    `(time, features)`.

    **Raises:** `ValueError` for an unknown `name` (the message lists the names).

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import memrl_eqx

    torso = memrl_eqx.make_torso(
        "gru", in_features=4, features=8, key=jax.random.key(0)
    )
    xs, resets = jnp.ones((5, 4)), jnp.zeros(5, bool)  # 5 steps
    carry, ys = torso(torso.init_carry(), xs, resets)
    assert ys.shape == (5, 8) and carry.shape == (8,)
    ```
    """
    if name not in TORSOS:
        raise ValueError(
            f"unknown torso {name!r}; choose one of: {', '.join(sorted(TORSOS))}."
        )
    return TORSOS[name](in_features, features, key)


def _action_space(env: Environment, env_params: PyTree[Any]):
    """`("discrete", n)` or `("continuous", (dim, low, high))`."""
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return "discrete", int(space.n)
    if hasattr(space, "low") and len(space.shape) == 1:
        dim = int(space.shape[0])
        low = tuple(float(x) for x in np.broadcast_to(np.asarray(space.low), (dim,)))
        high = tuple(float(x) for x in np.broadcast_to(np.asarray(space.high), (dim,)))
        return "continuous", (dim, low, high)
    raise ValueError(
        f"the environment's action space must be discrete or a 1-d box; got "
        f"{type(space).__name__} with shape {getattr(space, 'shape', None)}."
    )


class _ReLU(eqx.Module):
    # A layer without fields (`eqx.nn.Lambda` would make the function a leaf, which
    # `lax.scan` over a training state cannot carry).
    def __call__(self, x: Array, *, key: PRNGKeyArray | None = None) -> Array:
        return jax.nn.relu(x)


def network(
    env: Environment,
    env_params: PyTree[Any],
    head: Callable[[PRNGKeyArray], eqx.Module],
    *,
    torso: Torso = "gru",
    features: int = 64,
    layer_norm: bool = False,
    key: PRNGKeyArray,
) -> mnn.Network:
    """One [`memrl_eqx.nn.Network`][] for `env`: flatten the observation, embed
    it with a `Linear` layer of width `features` (then `LayerNorm` if
    `layer_norm`, as PQN wants) and ReLU, run the torso called `torso`
    (`features` wide), and apply `head(key)`, a head taking `features` inputs.

    [`memrl_eqx.actor_critic`][], [`memrl_eqx.q_network`][] and
    [`memrl_eqx.sac_networks`][] are built from it; use it directly for another
    head.

    **Arguments:**

    - `env`: a gymnax `Environment` (e.g. from [`memrl_eqx.envs.make`][]); only
      its observation space is read, for the size of the flattened observation.
    - `env_params`: the environment's params, passed to
      `env.observation_space`.
    - `head`: a function of a PRNG key that returns the head, a module mapping
      the torso's outputs `(time, features)` to the network's output.
    - `torso`: the torso: the name of one, a key of `memrl_eqx.TORSOS` (see
      [`memrl_eqx.make_torso`][]); or a sequence model
      ([`memrl_eqx.nn.AbstractSequenceModel`][]) from `(time, features)` to
      `(time, features)`, yours or the library's; or a function of a PRNG key
      returning one. Default `"gru"`.
    - `features`: the width of the embedding, of the torso and of the head's
      input. Default 64.
    - `layer_norm`: put a `LayerNorm` after the embedding. Default False.
    - `key`: a PRNG key, split between the embedding, the torso and the head
      (keyword only).

    **Returns:** the `Network`; it reads only `timestep.obs` (not the previous
    action or reward).

    **Raises:** `ValueError` for an unknown torso name, or a torso module that
    does not map `(time, features)` to `(time, features)` (the message says which
    width it takes or gives, found by tracing it: nothing is compiled);
    `TypeError` for a `torso` that is none of the three.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import memrl_eqx
    from memrl_eqx.nn import Timestep, heads

    env, params = memrl_eqx.envs.make("gymnax::CartPole-v1")  # obs (4,)
    critic = memrl_eqx.network(
        env,
        params,
        lambda key: heads.VNetwork(in_features=16, key=key),
        torso="gru",
        features=16,
        key=jax.random.key(0),
    )
    timestep = Timestep(
        obs=jnp.zeros((5, 4)),  # 5 steps of one episode
        prev_action=jnp.zeros(5, int),
        prev_reward=jnp.zeros(5),
        reset=jnp.arange(5) == 0,
    )
    carry, values = critic(critic.init_carry(), timestep)
    assert values.shape == (5,)
    ```
    """
    return _network("network", env, env_params, head, torso, features, layer_norm, key)


def _network(
    caller: str,
    env: Environment,
    env_params: PyTree[Any],
    head: Callable[[PRNGKeyArray], eqx.Module],
    torso: Torso,
    features: int,
    layer_norm: bool,
    key: PRNGKeyArray,
) -> mnn.Network:
    """`network`, with `caller` (the builder called) starting its messages."""
    obs_dim = math.prod(env.observation_space(env_params).shape)
    k_embed, k_torso, k_head = jr.split(key, 3)
    # The key an `MLP` of one layer would use, so agents match earlier releases.
    (k_linear,) = jr.split(k_embed, 1)
    layers = [mnn.Flatten(), mnn.Linear(obs_dim, features, key=k_linear)]
    if layer_norm:
        layers.append(eqx.nn.LayerNorm(features))
    layers.append(_ReLU())
    extractor = mnn.FeatureExtractor(eqx.nn.Sequential(layers))
    if isinstance(torso, str):
        body = make_torso(torso, in_features=features, features=features, key=k_torso)
    else:
        is_model = isinstance(torso, mnn.AbstractSequenceModel)
        body = torso if is_model or not callable(torso) else torso(k_torso)
        check_torso(caller, body, in_features=features, features=features)
    return mnn.Network(extractor, body, head(k_head))


def actor_critic(
    env: Environment,
    env_params: PyTree[Any],
    *,
    torso: Torso = "gru",
    features: int = 64,
    key: PRNGKeyArray,
) -> tuple[mnn.Network, mnn.Network]:
    """An actor and a critic for PPO, each with its own torso called `torso`
    (see [`memrl_eqx.network`][]).

    The actor's head is [`memrl_eqx.nn.heads.Categorical`][] for discrete actions
    and [`memrl_eqx.nn.heads.Gaussian`][] for continuous ones (a 1-d `Box`); the
    critic's is [`memrl_eqx.nn.heads.VNetwork`][].

    **Arguments:**

    - `env`: a gymnax `Environment` with a discrete or 1-d `Box` action space
      (e.g. from [`memrl_eqx.envs.make`][]).
    - `env_params`: the environment's params, for its observation and action
      spaces.
    - `torso`: both torsos: a name of `memrl_eqx.TORSOS`, a sequence model from
      `(time, features)` to `(time, features)` (both networks start from its
      parameters), or a function of a PRNG key returning one (called once per
      network); see [`memrl_eqx.network`][]. Default `"gru"`.
    - `features`: the width of the embedding, the torsos and the heads' inputs.
      Default 64.
    - `key`: a PRNG key, split between the actor and the critic (keyword only).

    **Returns:** `(actor, critic)`, two [`memrl_eqx.nn.Network`][]s. Over a
    sequence of `time` steps the actor returns a distrax distribution of batch
    shape `(time,)` and the critic values of shape `(time,)`.

    **Raises:** `ValueError` if the action space is neither discrete nor a 1-d
    `Box`.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import memrl_eqx
    from memrl_eqx.nn import Timestep

    env, params = memrl_eqx.envs.make("gymnax::CartPole-v1")  # 2 actions
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso="gru", features=16, key=jax.random.key(0)
    )
    timestep = Timestep(
        obs=jnp.zeros((5, 4)),  # 5 steps of one episode
        prev_action=jnp.zeros(5, int),
        prev_reward=jnp.zeros(5),
        reset=jnp.arange(5) == 0,
    )
    carry, policy = actor(actor.init_carry(), timestep)
    assert policy.logits.shape == (5, 2)
    _, values = critic(critic.init_carry(), timestep)
    assert values.shape == (5,)
    ```
    """
    kind, spec = _action_space(env, env_params)
    if kind == "discrete":
        policy = lambda k: heads.Categorical(
            in_features=features, action_dim=spec, key=k
        )
    else:
        policy = lambda k: heads.Gaussian(
            in_features=features, action_dim=spec[0], key=k
        )
    k_actor, k_critic = jr.split(key)
    value = lambda k: heads.VNetwork(in_features=features, key=k)
    args = (torso, features, False)
    actor = _network("actor_critic", env, env_params, policy, *args, k_actor)
    critic = _network("actor_critic", env, env_params, value, *args, k_critic)
    return actor, critic


def q_network(
    env: Environment,
    env_params: PyTree[Any],
    *,
    torso: Torso = "gru",
    features: int = 64,
    layer_norm: bool = False,
    key: PRNGKeyArray,
) -> mnn.Network:
    """A Q-network for DQN/R2D2 and PQN, for a discrete-action environment (see
    [`memrl_eqx.network`][]); its head is [`memrl_eqx.nn.heads.DiscreteQNetwork`][].

    **Arguments:**

    - `env`: a gymnax `Environment` with a discrete action space.
    - `env_params`: the environment's params, for its observation and action
      spaces.
    - `torso`: a name of `memrl_eqx.TORSOS`, a sequence model from
      `(time, features)` to `(time, features)`, or a function of a PRNG key
      returning one; see [`memrl_eqx.network`][]. Default `"gru"`.
    - `features`: the width of the embedding, the torso and the head's input.
      Default 64.
    - `layer_norm`: put a `LayerNorm` after the embedding (PQN wants it).
      Default False.
    - `key`: a PRNG key for the initial parameters (keyword only).

    **Returns:** a [`memrl_eqx.nn.Network`][] whose output over `time` steps is
    the action values, shape `(time, num_actions)`.

    **Raises:** `ValueError` if the action space is continuous.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import memrl_eqx
    from memrl_eqx.nn import Timestep

    env, params = memrl_eqx.envs.make("gymnax::CartPole-v1")  # 2 actions
    q = memrl_eqx.q_network(
        env, params, torso="gru", features=16, layer_norm=True, key=jax.random.key(0)
    )
    timestep = Timestep(
        obs=jnp.zeros((5, 4)),  # 5 steps of one episode
        prev_action=jnp.zeros(5, int),
        prev_reward=jnp.zeros(5),
        reset=jnp.arange(5) == 0,
    )
    carry, q_values = q(q.init_carry(), timestep)
    assert q_values.shape == (5, 2)
    greedy = q_values.argmax(-1)  # (5,)
    ```
    """
    kind, spec = _action_space(env, env_params)
    if kind != "discrete":
        raise ValueError(
            "q_network: the environment's action space must be discrete; "
            f"got a continuous one of dimension {spec[0]}."
        )
    head = lambda k: heads.DiscreteQNetwork(
        in_features=features, action_dim=spec, key=k
    )
    args = (torso, features, layer_norm, key)
    return _network("q_network", env, env_params, head, *args)


def sac_networks(
    env: Environment,
    env_params: PyTree[Any],
    *,
    torso: Torso = "gru",
    features: int = 64,
    key: PRNGKeyArray,
) -> tuple[mnn.Network, mnn.Network]:
    """An actor and a twin critic for `SAC` (continuous actions) or `SACD`
    (discrete actions), each with its own torso called `torso` (see `network`).

    - Continuous (a 1-d `Box`): the actor's head is `heads.SquashedGaussian`
      bounded to the box's `low` and `high`; the critic's is
      `heads.TwinContinuousQNetwork` with one hidden layer of width `features`
      (Q(s, a) must be non-linear in the action).
    - Discrete: the actor's head is `heads.Categorical`; the critic's is a
      `TwinDiscreteQNetwork` (Q for every action, two critics) with one hidden
      layer of width `features` per critic, so the twins share only the torso.

    **Arguments:**

    - `env`: a gymnax `Environment` with a discrete or 1-d `Box` action space.
    - `env_params`: the environment's params, for its observation and action
      spaces (and the box's bounds).
    - `torso`: both torsos: a name of `memrl_eqx.TORSOS`, a sequence model from
      `(time, features)` to `(time, features)` (both networks start from its
      parameters), or a function of a PRNG key returning one (called once per
      network); see [`memrl_eqx.network`][]. Default `"gru"`.
    - `features`: the width of the embedding, the torsos, the heads' inputs and
      the critics' hidden layers. Default 64.
    - `key`: a PRNG key, split between the actor and the critic (keyword only).

    **Returns:** `(actor, critic)`, two [`memrl_eqx.nn.Network`][]s. For
    continuous actions the critic is called with the actions,
    `critic(carry, timestep, actions)`.

    **Raises:** `ValueError` if the action space is neither discrete nor a 1-d
    `Box`.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import memrl_eqx
    from memrl_eqx.nn import Timestep

    env, params = memrl_eqx.envs.make("gymnax::Pendulum-v1")  # obs (3,), action (1,)
    actor, critic = memrl_eqx.sac_networks(
        env, params, torso="gru", features=16, key=jax.random.key(0)
    )
    timestep = Timestep(
        obs=jnp.zeros((5, 3)),  # 5 steps of one episode
        prev_action=jnp.zeros((5, 1)),
        prev_reward=jnp.zeros(5),
        reset=jnp.arange(5) == 0,
    )
    _, policy = actor(actor.init_carry(), timestep)
    actions = policy.sample(seed=jax.random.key(1))
    assert actions.shape == (5, 1)  # within the torque bounds [-2, 2]
    _, q = critic(critic.init_carry(), timestep, actions)
    assert q.shape == (5, 2)  # the twin critics' Q(s, a)
    ```
    """

    kind, spec = _action_space(env, env_params)
    if kind == "discrete":
        policy = lambda k: heads.Categorical(
            in_features=features, action_dim=spec, key=k
        )
        q_head = lambda k: heads.TwinDiscreteQNetwork(
            in_features=features, action_dim=spec, hidden=(features,), key=k
        )
    else:
        dim, low, high = spec
        policy = lambda k: heads.SquashedGaussian(
            in_features=features, action_dim=dim, low=low, high=high, key=k
        )
        q_head = lambda k: heads.TwinContinuousQNetwork(
            in_features=features, action_dim=dim, hidden=(features,), key=k
        )
    k_actor, k_critic = jr.split(key)
    args = (torso, features, False)
    actor = _network("sac_networks", env, env_params, policy, *args, k_actor)
    critic = _network("sac_networks", env, env_params, q_head, *args, k_critic)
    return actor, critic
