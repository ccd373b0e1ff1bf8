"""Ready-made actor and critic networks for any torso, by name.

The command line, the tests and quick experiments build agents from here;
`TORSOS` maps a torso name to a factory, so a new sequence model joins the CLI
by adding one line.
"""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.random as jr
from gymnax.environments.environment import Environment
from jaxtyping import PRNGKeyArray, PyTree

from . import nn as mnn
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


def make_torso(
    name: str, *, in_features: int, features: int, key: PRNGKeyArray
) -> mnn.AbstractSequenceModel:
    """Build the torso called `name` (one of `TORSOS`)."""
    if name not in TORSOS:
        raise ValueError(
            f"unknown torso {name!r}; choose one of: {', '.join(sorted(TORSOS))}."
        )
    return TORSOS[name](in_features, features, key)


def actor_critic(
    env: Environment,
    env_params: PyTree[Any],
    *,
    torso: str = "gru",
    features: int = 64,
    key: PRNGKeyArray,
) -> tuple[mnn.Network, mnn.Network]:
    """An actor (`heads.Categorical`) and a critic (`heads.VNetwork`) for a
    discrete-action environment, each with its own torso called `torso`.

    Each network flattens the observation, embeds it with a one-layer `MLP` of
    width `features`, runs the torso (`features` wide) and applies its head.
    """
    action_space = env.action_space(env_params)
    if not hasattr(action_space, "n"):
        raise ValueError(
            f"actor_critic: the environment's action space must be discrete; "
            f"got {type(action_space).__name__}."
        )
    obs_dim = math.prod(env.observation_space(env_params).shape)

    def network(key, head):
        k_embed, k_torso, k_head = jr.split(key, 3)
        embed = mnn.MLP(in_features=obs_dim, features=(features,), key=k_embed)
        extractor = mnn.FeatureExtractor(eqx.nn.Sequential([mnn.Flatten(), embed]))
        body = make_torso(torso, in_features=features, features=features, key=k_torso)
        return mnn.Network(extractor, body, head(k_head))

    k_actor, k_critic = jr.split(key)
    actor = network(
        k_actor,
        lambda k: heads.Categorical(
            in_features=features, action_dim=int(action_space.n), key=k
        ),
    )
    critic = network(k_critic, lambda k: heads.VNetwork(in_features=features, key=k))
    return actor, critic
