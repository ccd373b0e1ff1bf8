"""Learning curves of every algorithm with a recurrent torso on a memory task.

Each algorithm trains a GRU agent on a partially observed task, three seeds at
once (one `eqx.filter_vmap`), then the same agent with a memoryless MLP torso as
a baseline. Training runs in chunks. After each chunk every seed is evaluated
on 32 episodes (greedy or deterministic actions, fresh environments), and the
curve is that evaluation return against environment steps (warm-up excluded):
the mean over seeds, shaded between the worst and the best seed. The figure
goes to `docs/assets/curves/<algorithm>.png`, and the final figures and the
mean curves are printed.

| algorithm | task | steps | GRU run, 2-core CPU |
| --- | --- | --- | --- |
| ppo | popgym::StatelessCartPoleEasy | 150k | under 1 min |
| dqn (R2D2) | popgym::StatelessCartPoleEasy | 300k | about 2 min |
| pqn | popgym::RepeatPreviousEasy | 700k | under 1 min |
| sac | gymnax Pendulum-v1, velocity masked | 100k | about 4 min |
| sacd | gymnax CartPole-v1, velocities masked | 60k | about 4 min |

    python benchmarks/learning_curves.py [--algorithms ppo dqn pqn sac sacd]
        [--seeds 3] [--no-baseline] [--torso gru] [--scale 1.0]
        [--out docs/assets/curves]

`--scale` multiplies every step budget (e.g. 0.05 for a quick smoke run);
`--torso` swaps the recurrent torso (any name of `memrl_eqx.TORSOS`).
"""

import argparse
import dataclasses
import math
import pathlib
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import matplotlib
import matplotlib.ticker
import numpy as np
import optax
from _common import machine


matplotlib.use("Agg")
import matplotlib.pyplot as plt

import memrl_eqx
from memrl_eqx.algorithms import (
    DQN,
    DQNConfig,
    PPO,
    PPOConfig,
    PQN,
    PQNConfig,
    SAC,
    SACConfig,
    SACD,
    SACDConfig,
)
from memrl_eqx.envs import make, MaskObservation


ROOT = pathlib.Path(__file__).parents[1]


@dataclasses.dataclass(frozen=True)
class Setup:
    """One algorithm's experiment.

    - `build(env, params, torso, key)`: the algorithm, with networks from `key`;
    - `env()`: `(env, params, label)`, the task and how the plot names it;
    - `num_steps`: environment steps of training (warm-up excluded), split into
      `chunks` evaluations; `warmup`: steps of random actions first (replay
      methods);
    - `eval_episodes`: episodes per evaluation and seed;
    - `reference`: horizontal lines worth drawing, `{label: return}`.
    """

    title: str
    build: Callable[..., Any]
    env: Callable[[], tuple[Any, Any, str]]
    num_steps: int
    chunks: int = 20
    warmup: int = 0
    eval_episodes: int = 32
    reference: dict[str, float] = dataclasses.field(default_factory=dict)
    torso: str = "gru"


# ---------------------------------------------------------------- environments
def popgym(name: str) -> Callable[[], tuple[Any, Any, str]]:
    def env():
        env, params = make(f"popgym::{name}")
        return env, params, f"popgym::{name}"

    return env


def masked_pendulum() -> tuple[Any, Any, str]:
    """gymnax Pendulum-v1 observing `[cos θ, sin θ]` only: the angular velocity
    must be inferred from memory."""
    env, params = make("gymnax::Pendulum-v1")
    return MaskObservation(env, [0, 1]), params, "Pendulum-v1, velocity masked"


def masked_cartpole() -> tuple[Any, Any, str]:
    """gymnax CartPole-v1 observing `[x, θ]` only."""
    env, params = make("gymnax::CartPole-v1")
    return MaskObservation(env, [0, 2]), params, "CartPole-v1, velocities masked"


# ---------------------------------------------------------------- algorithms
def build_ppo(env, params, torso, key):
    actor, critic = memrl_eqx.actor_critic(
        env, params, torso=torso, features=64, key=key
    )
    return PPO(
        config=PPOConfig(),
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.chain(
            optax.clip_by_global_norm(0.5), optax.adam(1e-3, eps=1e-5)
        ),
    )


def build_dqn(env, params, torso, key):
    q = memrl_eqx.q_network(env, params, torso=torso, features=64, key=key)
    # R2D2's recipe with shorter sequences and 3-step targets.
    config = DQNConfig.r2d2(
        sequence_length=16, burn_in_length=8, n_step=3, epsilon_decay_steps=30_000.0
    )
    return DQN(
        config=config,
        env=env,
        env_params=params,
        q_network=q,
        optimizer=optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)),
    )


def build_pqn(env, params, torso, key):
    q = memrl_eqx.q_network(
        env, params, torso=torso, features=64, layer_norm=True, key=key
    )
    return PQN(
        config=PQNConfig(),
        env=env,
        env_params=params,
        q_network=q,
        optimizer=optax.chain(optax.clip_by_global_norm(10.0), optax.radam(1e-3)),
    )


def build_sac(env, params, torso, key):
    actor, critic = memrl_eqx.sac_networks(
        env, params, torso=torso, features=64, key=key
    )
    config = SACConfig(batch_size=32, sequence_length=8, burn_in_length=4)
    return SAC(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )


def build_sacd(env, params, torso, key):
    actor, critic = memrl_eqx.sac_networks(
        env, params, torso=torso, features=64, key=key
    )
    config = SACDConfig(
        gradient_steps=2,
        batch_size=64,
        sequence_length=4,
        burn_in_length=2,
        buffer_capacity=10_000,
        tau=0.02,
    )
    return SACD(
        config=config,
        env=env,
        env_params=params,
        actor=actor,
        critic=critic,
        optimizer=optax.adam(1e-3),
    )


SETUPS: dict[str, Setup] = {
    "ppo": Setup(
        title="PPO",
        build=build_ppo,
        env=popgym("StatelessCartPoleEasy"),
        num_steps=150_000,
        reference={"perfect": 1.0},
    ),
    "dqn": Setup(
        title="R2D2",
        build=build_dqn,
        env=popgym("StatelessCartPoleEasy"),
        num_steps=300_000,
        warmup=2_000,
        reference={"perfect": 1.0},
    ),
    "pqn": Setup(
        title="PQN",
        build=build_pqn,
        env=popgym("RepeatPreviousEasy"),
        num_steps=700_000,
        reference={"perfect": 1.0, "chance": -0.5},
    ),
    "sac": Setup(
        title="SAC",
        build=build_sac,
        env=masked_pendulum,
        num_steps=100_000,
        warmup=5_000,
    ),
    "sacd": Setup(
        title="SACD",
        build=build_sacd,
        env=masked_cartpole,
        num_steps=60_000,
        warmup=4_000,
        reference={"maximum": 500.0},
    ),
}


# ---------------------------------------------------------------- training
@dataclasses.dataclass
class Curve:
    steps: np.ndarray  # (chunks + 1,) environment steps (warm-up excluded)
    returns: np.ndarray  # (seeds, chunks + 1) mean evaluation return
    seconds: float  # wall time, compilation included
    steps_per_second: float  # of training, all seeds, after compilation


def _steps_per_update(algo) -> int:
    config = algo.config
    if hasattr(config, "steps_per_update"):
        return config.steps_per_update
    return config.batch_size  # PPO, PQN: num_envs * num_steps


def _stack(modules: list) -> Any:
    """Modules of one structure as one module whose arrays have a leading seed
    axis (their other leaves, e.g. activations, are shared)."""
    arrays, static = eqx.partition(modules[0], eqx.is_array)
    leaves = [jax.tree.leaves(eqx.filter(m, eqx.is_array)) for m in modules]
    stacked = [jnp.stack(xs) for xs in zip(*leaves)]
    return eqx.combine(jax.tree.unflatten(jax.tree.structure(arrays), stacked), static)


def learning_curve(setup: Setup, torso: str, seeds: int, scale: float) -> Curve:
    start = time.perf_counter()
    env, params, _ = setup.env()
    keys = jr.split(jr.key(0), seeds)
    # Networks are built outside `jit`: some observation spaces (gymnax's
    # Pendulum) are computed with jnp, which `MaskObservation` cannot trace.
    algos = [setup.build(env, params, torso, jr.fold_in(k, 0)) for k in keys]
    algo = algos[0]
    per_update = _steps_per_update(algo)
    total_updates = math.ceil(setup.num_steps * scale / per_update)
    chunks = min(setup.chunks, total_updates)
    chunk = math.ceil(total_updates / chunks) * per_update
    warmup = max(per_update, int(setup.warmup * scale)) if setup.warmup else 0

    @eqx.filter_jit
    @eqx.filter_vmap
    def init(seeded, key):
        state = seeded.init(key)
        if warmup:
            state = seeded.warmup(state, warmup)
        return state

    @eqx.filter_jit
    def train(state):
        return eqx.filter_vmap(lambda s: algo.train(s, chunk)[0])(state)

    @eqx.filter_jit
    def evaluate(state, keys):
        run = lambda s, k: jnp.mean(algo.evaluate(s, k, setup.eval_episodes)["return"])
        return eqx.filter_vmap(run)(state, keys)

    state = init(_stack(algos), jr.split(jr.key(1), seeds))
    eval_keys = lambda i: jr.split(jr.fold_in(jr.key(2), i), seeds)
    returns = [evaluate(state, eval_keys(0))]
    chunk_seconds = []
    for i in range(chunks):
        tic = time.perf_counter()
        state = jax.block_until_ready(train(state))
        chunk_seconds.append(time.perf_counter() - tic)
        returns.append(evaluate(state, eval_keys(i + 1)))
    returns = np.asarray(jax.block_until_ready(jnp.stack(returns, axis=1)))
    steps = np.arange(chunks + 1) * chunk
    steady = np.median(chunk_seconds[1:]) if chunks > 1 else chunk_seconds[0]
    return Curve(steps, returns, time.perf_counter() - start, seeds * chunk / steady)


# ---------------------------------------------------------------- plotting
def plot(name: str, setup: Setup, curves: dict[str, Curve], out: pathlib.Path):
    _, _, env_label = setup.env()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    styles = {"gru": ("tab:blue", "-"), "mlp": ("tab:gray", "--")}
    for torso, curve in curves.items():
        color, line = styles.get(torso, ("tab:orange", "-"))
        mean = curve.returns.mean(axis=0)
        label = f"{torso.upper()} (mean of {curve.returns.shape[0]} seeds)"
        if torso == "mlp":
            label = f"MLP, memoryless (mean of {curve.returns.shape[0]} seeds)"
        ax.plot(curve.steps, mean, line, color=color, label=label)
        if curve.returns.shape[0] > 1:
            ax.fill_between(
                curve.steps,
                curve.returns.min(axis=0),
                curve.returns.max(axis=0),
                color=color,
                alpha=0.2,
                linewidth=0,
            )
    for label, value in setup.reference.items():
        ax.axhline(value, color="black", linewidth=0.6, linestyle=":")
        ax.annotate(
            label,
            (1, value),
            xycoords=("axes fraction", "data"),
            xytext=(-3, 2),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    ax.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0")
    )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{setup.title} on {env_label}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", nargs="+", default=list(SETUPS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--torso", help="the recurrent torso (default: gru)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "docs/assets/curves")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for name in args.algorithms:
        setup = SETUPS[name]
        recurrent = args.torso or setup.torso
        torsos = [recurrent] if args.no_baseline else [recurrent, "mlp"]
        curves = {}
        for torso in torsos:
            curve = learning_curve(setup, torso, args.seeds, args.scale)
            curves[torso] = curve
            final = curve.returns[:, -1]
            print(
                f"{name} {torso}: final evaluation return "
                f"{final.mean():.3f} ± {final.std():.3f} "
                f"(seeds: {', '.join(f'{r:.3f}' for r in final)}) after "
                f"{curve.steps[-1]:,} steps; {curve.seconds:.0f} s "
                f"({curve.steps_per_second:,.0f} env steps/s over all seeds)",
                flush=True,
            )
            means = ", ".join(
                f"{step:,}: {value:.4g}"
                for step, value in zip(curve.steps, curve.returns.mean(axis=0))
            )
            print(f"  mean curve: {means}", flush=True)
        plot(name, setup, curves, args.out)


if __name__ == "__main__":
    main()
