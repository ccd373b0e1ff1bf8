"""Write your own recurrent cell and train PPO with it.

A step cell is an `eqx.Module` subclassing `memrl_eqx.nn.AbstractCell` with
three methods:

- `init_carry()`: the carry at the start of an episode;
- `input_projection(x)`: the part of a step that depends on the input alone
  (`RNN` computes it for every step of a sequence at once);
- `recurrence(carry, u)`: the sequential part, returning `(carry, output)`.

`memrl_eqx.nn.RNN(cell)` runs it over sequences and resets the carry at
episode starts, which makes it a torso like any other. This script writes a
leaky Elman cell with a learned time constant per unit,

    h' = λ h + (1 - λ) tanh(W x + U h + b),    λ = sigmoid(d),

checks that it keeps the library's contract (running a sequence in two chunks
gives the same outputs as running it at once; nothing crosses an episode
start), then builds an actor and a critic around it and trains PPO on POPGym's
RepeatPreviousEasy (chance is about -0.5, perfect play 1) for a few seeds,
vmapped. It prints the evaluation return and the decays λ the cell learned,
and writes them as JSON.

Run it (about 2 minutes on 2 CPU cores):

    python examples/custom_cell.py
    python examples/custom_cell.py --total-steps 400000 --out leaky.json

`--smoke` runs a tiny budget, only to check that the script works.
"""

import argparse
import json
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

import memrl_eqx
import memrl_eqx.nn as mnn
from memrl_eqx.algorithms import PPO, PPOConfig
from memrl_eqx.nn import heads


class LeakyElmanCell(mnn.AbstractCell):
    """An Elman cell whose units leak: each keeps a learned fraction λ of its
    state at every step, so slow units (λ near 1) hold information longer."""

    weight_in: jax.Array
    weight_rec: jax.Array
    bias: jax.Array
    decay_logit: jax.Array
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)

    def __init__(self, *, in_features, features, key):
        k_in, k_rec = jr.split(key)
        self.weight_in = jr.normal(k_in, (features, in_features)) / math.sqrt(
            in_features
        )
        self.weight_rec = jax.nn.initializers.orthogonal()(k_rec, (features, features))
        self.bias = jnp.zeros(features)
        # Time constants from fast (λ = 0.1) to slow (λ = 0.9).
        self.decay_logit = jax.scipy.special.logit(jnp.linspace(0.1, 0.9, features))
        self.in_features = in_features
        self.features = features

    def decay(self):
        return jax.nn.sigmoid(self.decay_logit)

    def init_carry(self):
        return jnp.zeros(self.features)

    def input_projection(self, x):
        return self.weight_in @ x + self.bias

    def recurrence(self, h, u):
        decay = self.decay()
        h = decay * h + (1 - decay) * jnp.tanh(u + self.weight_rec @ h)
        return h, h


def check_contract(model, key):
    """The two properties every sequence model of the library has."""
    xs = jr.normal(key, (12, model.in_features))
    resets = jnp.zeros(12, bool).at[0].set(True).at[7].set(True)
    _, ys = model(model.init_carry(), xs, resets)
    # 1. Chunks: the carry handed from one call to the next loses nothing.
    carry, first = model(model.init_carry(), xs[:5], resets[:5])
    _, second = model(carry, xs[5:], resets[5:])
    assert jnp.allclose(jnp.concatenate([first, second]), ys, atol=1e-5)
    # 2. Resets: after step 7 starts an episode, earlier inputs do not matter.
    _, ys_other = model(model.init_carry(), xs.at[:7].set(0.0), resets)
    assert jnp.allclose(ys_other[7:], ys[7:], atol=1e-6)


def leaky_network(obs_dim, head, features, key):
    """Feature extractor (an MLP of the observation), the leaky torso and `head`."""
    k_mlp, k_cell, k_head = jr.split(key, 3)
    return mnn.Network(
        feature_extractor=mnn.FeatureExtractor(
            mnn.MLP(in_features=obs_dim, features=(features,), key=k_mlp)
        ),
        torso=mnn.RNN(
            LeakyElmanCell(in_features=features, features=features, key=k_cell)
        ),
        head=head(k_head),
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="popgym::RepeatPreviousEasy")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--total-steps", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--out", default="custom_cell.json")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny budget, to test the script"
    )
    args = parser.parse_args()
    args.num_envs, args.num_steps = 32, 128
    if args.smoke:
        args.total_steps, args.features, args.eval_episodes = 512, 8, 2
        args.num_envs, args.num_steps = 4, 64
    return args


def main():
    args = parse_args()
    check_contract(
        mnn.RNN(LeakyElmanCell(in_features=3, features=5, key=jr.key(0))), jr.key(1)
    )
    print("LeakyElmanCell keeps the sequence-model contract")

    env, env_params = memrl_eqx.envs.make(args.env)
    (obs_dim,) = env.observation_space(env_params).shape
    num_actions = env.action_space(env_params).n
    f = args.features

    def run(key):
        actor_key, critic_key, train_key, eval_key = jr.split(key, 4)
        actor = leaky_network(
            obs_dim,
            lambda k: heads.Categorical(in_features=f, action_dim=num_actions, key=k),
            f,
            actor_key,
        )
        critic = leaky_network(
            obs_dim, lambda k: heads.VNetwork(in_features=f, key=k), f, critic_key
        )
        algo = PPO(
            config=PPOConfig(num_envs=args.num_envs, num_steps=args.num_steps),
            env=env,
            env_params=env_params,
            actor=actor,
            critic=critic,
            optimizer=optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.adam(args.learning_rate, eps=1e-5),
            ),
        )
        state, metrics = algo.train(algo.init(train_key), args.total_steps)
        evaluation = algo.evaluate(state, eval_key, args.eval_episodes)
        decay = state.actor.torso.cell.decay()
        return metrics["return"], jnp.mean(evaluation["return"]), decay

    start = time.perf_counter()
    keys = jr.split(jr.key(2), args.seeds)
    returns, evaluation, decay = eqx.filter_jit(eqx.filter_vmap(run))(keys)
    seconds = time.perf_counter() - start

    returns, evaluation = np.asarray(returns), np.asarray(evaluation)
    decay = np.asarray(decay)
    print(f"{args.seeds} seeds x {args.total_steps} steps in {seconds:.1f} s")
    print(f"final training return: {np.nanmean(returns[:, -5:]):.3f}")
    print(f"evaluation return per seed: {' '.join(f'{r:.3f}' for r in evaluation)}")
    print(f"evaluation return: {evaluation.mean():.3f}")
    quartiles = np.quantile(decay, [0.0, 0.25, 0.5, 0.75, 1.0])
    print(f"learned decays (min, quartiles, max): {np.round(quartiles, 2).tolist()}")
    with open(args.out, "w") as file:
        results = dict(
            env=args.env,
            train_return=np.nanmean(returns, axis=0).tolist(),
            evaluation_return=evaluation.tolist(),
            actor_decays=decay.tolist(),
            seconds=seconds,
        )
        json.dump(results, file, indent=2)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
