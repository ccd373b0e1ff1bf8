"""The Flax original's side of `compare_memorax.py` (PyPI `memorax==1.0.1`).

Everything here imports `memorax` and `flax`, so `compare_memorax.py` loads this
module only in the worker processes that time the original.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from memorax.algorithms import PPO, PPOConfig
from memorax.environments import make
from memorax.networks import (
    FeatureExtractor,
    FFMCell,
    heads,
    LinearAttentionCell,
    LRUCell,
    MambaCell,
    Memoroid,
    MinGRUCell,
    MLP,
    mLSTMCell,
    Network,
    RNN,
    S5Cell,
    SelfAttention,
    SequenceModelWrapper,
    SHMCell,
    sLSTMCell,
)


class FiveValueStep:
    """gymnax 1.0's `step` returns six values; memorax 1.0.1 unpacks five.

    Returns `(obs, state, reward, terminated | truncated, info)`, the one done
    flag the original expects; everything else is the wrapped environment's.
    """

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params
        )
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


_LECUN = nn.initializers.lecun_normal()
_ZEROS = nn.initializers.zeros_init()


def model(name: str, sizes: dict) -> nn.Module:
    """The original's sequence model called `name` (our torso names), of `sizes`
    (the dict `compare_memorax.MODELS` gives both libraries)."""
    f = sizes["features"]
    cells = {
        "gru": lambda: RNN(cell=nn.GRUCell(features=f)),
        "lstm": lambda: RNN(cell=nn.OptimizedLSTMCell(features=f)),
        "lru": lambda: Memoroid(cell=LRUCell(features=f, hidden_dim=sizes["hidden"])),
        "s5": lambda: Memoroid(cell=S5Cell(features=f, state_size=sizes["hidden"])),
        "min_gru": lambda: Memoroid(cell=MinGRUCell(features=f)),
        "ffm": lambda: Memoroid(
            cell=FFMCell(
                features=f,
                memory_size=sizes["memory_size"],
                context_size=sizes["context_size"],
            )
        ),
        "linear_attention": lambda: Memoroid(
            cell=LinearAttentionCell(
                head_dim=sizes["head_dim"],
                num_heads=sizes["heads"],
                kernel_init=_LECUN,
                bias_init=_ZEROS,
                param_dtype=jnp.float32,
            )
        ),
        "mamba2": lambda: Memoroid(
            cell=MambaCell(
                features=f,
                num_heads=sizes["heads"],
                head_dim=sizes["head_dim"],
                hidden_dim=sizes["state_dim"],
            )
        ),
        "mlstm": lambda: Memoroid(
            cell=mLSTMCell(
                features=f, hidden_dim=sizes["hidden"], num_heads=sizes["heads"]
            )
        ),
        "slstm": lambda: RNN(
            cell=sLSTMCell(
                features=f,
                hidden_dim=sizes["hidden"],
                num_heads=sizes["heads"],
                conv_kernel_size=sizes["conv_kernel"],
            )
        ),
        "shm": lambda: RNN(cell=SHMCell(features=sizes["memory"], output_features=f)),
        "self_attention": lambda: SelfAttention(
            features=f,
            num_heads=sizes["heads"],
            context_length=sizes["context_length"],
            dtype=jnp.float32,
            param_dtype=jnp.float32,
            kernel_init=_LECUN,
            bias_init=_ZEROS,
        ),
    }
    return cells[name]()


def sequence_fns(name: str, sizes: dict, batch: int, length: int):
    """`(grad, inputs)`: the gradient of the mean squared output with respect to
    the parameters, and its arguments `(params, carry, xs, resets)`."""
    module = model(name, sizes)
    f = sizes["features"]
    xs = jax.random.normal(jax.random.key(1), (batch, length, f))
    resets = jax.random.bernoulli(jax.random.key(2), 0.01, (batch, length))
    carry = module.initialize_carry(jax.random.key(0), (batch, f))
    # The parameters do not depend on T: initialise on one step, so the worker's
    # peak memory is the timed pass's, not an eager full-length forward's.
    params = module.init(jax.random.key(0), xs[:, :1], resets[:, :1], carry)

    def loss(params, carry, xs, resets):
        _, ys = module.apply(params, xs, resets, initial_carry=carry)
        return jnp.mean(ys**2)

    return jax.grad(loss), (params, carry, xs, resets)


def ppo(torso: str, features: int, env_id: str):
    """`(train, state, key, batch_size)`: the original's PPO on `env_id`, built as
    `compare_memorax.ppo_config` describes; `train(key, state, num_steps)`."""
    env, env_params = make(env_id)
    env = FiveValueStep(env)
    torsos = {
        "gru": lambda: RNN(cell=nn.GRUCell(features=features)),
        "lru": lambda: Memoroid(cell=LRUCell(features=features, hidden_dim=features)),
        "mlp": lambda: SequenceModelWrapper(MLP(features=features)),
    }

    def network(head):
        return Network(
            feature_extractor=FeatureExtractor(
                observation_extractor=MLP(features=features)
            ),
            torso=torsos[torso](),
            head=head,
        )

    action_dim = env.action_space(env_params).n
    config = PPOConfig(
        name="ppo",
        num_envs=32,
        num_eval_envs=32,
        num_steps=128,
        gamma=0.99,
        gae_lambda=0.95,
        num_minibatches=4,
        update_epochs=4,
        normalize_advantage=True,
        clip_coef=0.2,
        clip_vloss=True,
        ent_coef=0.01,
        vf_coef=0.5,  # unused: the original has one optimizer per network
    )
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-4))
    agent = PPO(
        cfg=config,
        env=env,
        env_params=env_params,
        actor_network=network(heads.Categorical(action_dim=action_dim)),
        critic_network=network(heads.VNetwork()),
        actor_optimizer=optimizer,
        critic_optimizer=optimizer,
    )
    key, state = agent.init(jax.random.key(0))

    def train(key, state, num_steps):
        return agent.train(key, state, num_steps)

    return train, state, key, config.batch_size
