"""Where the time of one PPO update goes, per torso (issue 20's profile).

The configuration is `ppo_throughput.py`'s (gymnax CartPole-v1, 32 envs x 128
steps, 4 epochs x 4 minibatches, hidden 64). Each part is jitted and timed on
its own after compilation (median of `--repeats` calls):

- `update`: one whole update inside `PPO.train` (rollout, GAE, learner);
- `rollout`: the 128 environment steps alone (actor, critic, environment);
- `minibatch`: one learner step (forward+backward of the loss over 8
  trajectories x 128 steps, and the optimizer), x 16 per update;
- `loss fwd`: the loss alone, forward only;
- `torso fwd+bwd`: the torso alone, forward+backward over 8 x 128 (x 2 per
  minibatch, actor and critic).

It also counts the HLO instructions of the compiled update and of its loop
bodies (`while` ops), the per-iteration work XLA's CPU runtime dispatches.

    python benchmarks/ppo_profile.py [--torsos gru mlp] [--repeats 5]
"""

import argparse
import re
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
from _common import cartpole_ppo, machine


def _timed(fn, *args, repeats: int) -> float:
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _minibatch(algo, state):
    """A learner minibatch as `PPO._update` builds it (the first 8 envs)."""
    cfg = algo.config
    carries = (state.actor_carry, state.critic_carry)
    _, rollout, last_value, _ = algo._rollout(state)
    env_major = lambda x: jnp.swapaxes(x, 0, 1)
    data = jtu.tree_map(env_major, eqx.filter(rollout, eqx.is_array))
    size = cfg.num_envs // cfg.num_minibatches
    advantages = jnp.zeros_like(data.reward)
    batch = (*carries, None, data, advantages, data.reward)
    return jtu.tree_map(lambda x: x[:size], batch)


def _hlo_counts(algo, state, updates: int) -> tuple[int, list[int]]:
    """Instructions of the compiled `train` and of each `while` body."""
    from memrl_eqx.algorithms._ppo import _train_impl

    arrays, static = eqx.partition(state, eqx.is_array)
    fn = jax.jit(lambda a: _train_impl(algo, eqx.combine(a, static), updates))
    text = fn.lower(arrays).compile().as_text()
    computations = re.split(r"\n(?=\S.*\{\s*$)", text, flags=re.M)
    sizes = {}
    for comp in computations:
        header = comp.split("\n", 1)[0]
        name = header.split()[0] if header.split() else ""
        if name == "ENTRY":
            name = "ENTRY"
        sizes[name.lstrip("%")] = sum(
            1 for line in comp.split("\n")[1:] if "=" in line and "ROOT" not in line
        ) + sum(1 for line in comp.split("\n") if "ROOT" in line)
    bodies = re.findall(r"while\(.*?body=%?([\w.\-]+)", text)
    total = sum(sizes.values())
    return total, sorted((sizes.get(b, 0) for b in bodies), reverse=True)


def profile(torso: str, repeats: int) -> dict:
    algo = cartpole_ppo(torso)
    state = algo.init(jr.key(0))
    cfg = algo.config
    updates = 5
    train = lambda s: algo.train(s, updates * cfg.batch_size)[1]
    jax.block_until_ready(train(state))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(train(state))
        times.append((time.perf_counter() - start) / updates)
    update = statistics.median(times)

    rollout = _timed(lambda s: algo._rollout(s)[1], state, repeats=repeats)
    batch = _minibatch(algo, state)
    params = eqx.filter((state.actor, state.critic), eqx.is_array)
    static = eqx.filter((state.actor, state.critic), eqx.is_array, inverse=True)
    key = jr.key(1)

    def loss(p, batch, key):
        return algo._loss(eqx.combine(p, static), batch, key)[0]

    opt_state = state.opt_state

    def step(p, opt_state, batch, key):
        grads = jax.grad(loss)(p, batch, key)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = algo.optimizer.update(grads, opt_state, p)
        return eqx.apply_updates(p, updates), opt_state

    minibatch = _timed(step, params, opt_state, batch, key, repeats=repeats)
    forward = _timed(loss, params, batch, key, repeats=repeats)

    torso_model = state.actor.torso
    tparams, tstatic = eqx.partition(torso_model, eqx.is_array)
    xs = jr.normal(jr.key(2), (batch[3].reward.shape + (torso_model.in_features,)))
    resets = batch[3].timestep.reset

    def torso_loss(p, carry, xs, resets):
        model = eqx.combine(p, tstatic)
        return jnp.mean(jax.vmap(model)(carry, xs, resets)[1] ** 2)

    torso_time = _timed(
        jax.grad(torso_loss), tparams, batch[0], xs, resets, repeats=repeats
    )
    total, bodies = _hlo_counts(algo, state, 1)
    steps = cfg.num_minibatches * cfg.update_epochs
    return dict(
        update=update,
        rollout=rollout,
        minibatch=minibatch,
        learner=steps * minibatch,
        forward=forward,
        torso=torso_time,
        sps=cfg.batch_size / update,
        hlo=total,
        bodies=bodies[:6],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torsos", nargs="+", default=["gru", "mlp"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        "| torso | env steps/s | update (ms) | rollout (ms) | 16 x minibatch (ms) "
        "| minibatch (ms) | loss fwd (ms) | torso fwd+bwd (ms) | HLO instructions "
        "| largest loop bodies |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for torso in args.torsos:
        r = profile(torso, args.repeats)
        ms = lambda s: f"{1e3 * s:.2f}"
        print(
            f"| {torso} | {r['sps']:,.0f} | {ms(r['update'])} | {ms(r['rollout'])} "
            f"| {ms(r['learner'])} | {ms(r['minibatch'])} | {ms(r['forward'])} "
            f"| {ms(r['torso'])} | {r['hlo']:,} | {r['bodies']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
