"""Every backend's adapter, where its package is installed: a few hundred jitted,
vmapped steps through the gymnax interface, and `make`'s errors."""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from memrl_eqx.envs import _make, list_envs, make

from ._helpers import rollout


def _sample(env, key, obs, state, arg=None):
    del obs, state, arg
    space = env.action_space(None)
    if hasattr(env, "num_agents"):
        return jax.vmap(space.sample)(jax.random.split(key, env.num_agents))
    return space.sample(key)


# namespace::id, and the package it needs. Ids are the cheapest of each suite to
# compile; craftax and MuJoCo Playground compile for a minute on two CPU cores.
BACKENDS = [
    ("brax::fast", "brax"),
    ("mujoco::CartpoleBalance", "mujoco_playground"),
    ("craftax::Craftax-Classic-Symbolic-v1", "craftax"),
    ("navix::Navix-Empty-5x5-v0", "navix"),
    ("gxm::Navix/Navix-Empty-5x5-v0", "gxm"),
    ("xminigrid::MiniGrid-Empty-5x5", "xminigrid"),
    ("jaxmarl::MPE_simple_spread_v3", "jaxmarl"),
    ("popgym_arcade::CountRecallEasy", "popgym_arcade"),
]
NUM_ENVS, NUM_STEPS = 4, 120


@pytest.mark.parametrize("env_id, package", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_backend_steps_under_jit_and_vmap(env_id, package):
    pytest.importorskip(package)
    namespace = env_id.split("::")[0]
    if namespace != "gxm":
        assert env_id in list_envs(namespace)
    env, params = make(env_id)
    traj = rollout(
        env,
        params,
        jax.random.key(0),
        policy=_sample,
        num_envs=NUM_ENVS,
        num_steps=NUM_STEPS,
    )
    agents = (env.num_agents,) if hasattr(env, "num_agents") else ()
    batch = (NUM_ENVS, NUM_STEPS)
    assert traj["reward"].shape == batch + agents
    assert traj["reward"].dtype == jnp.float32
    assert np.isfinite(np.asarray(traj["reward"])).all()
    terminated = np.asarray(traj["terminated"])
    truncated = np.asarray(traj["truncated"])
    assert terminated.shape == truncated.shape == batch
    assert not (terminated & truncated).any()
    obs_space = env.observation_space(params)
    obs = traj["obs"]
    final = traj["info"]["final_observation"]
    for x in jax.tree.leaves((obs, final)):
        assert x.shape[:2] == batch
    if isinstance(obs_space, spaces.Box):
        assert obs.shape == batch + agents + tuple(obs_space.shape)
        assert obs.dtype == obs_space.dtype
    if isinstance(obs_space, spaces.Box) and jnp.issubdtype(obs.dtype, jnp.floating):
        # (Grid suites' integer bounds are their own business: navix's are loose.)
        low, high = np.asarray(obs_space.low), np.asarray(obs_space.high)
        assert ((low <= np.asarray(obs)) & (np.asarray(obs) <= high)).all()
    # Where no episode ended, the final observation is the next observation.
    done = terminated | truncated
    running = ~done[:, :-1]
    np.testing.assert_array_equal(
        np.asarray(final)[:, :-1][running], np.asarray(obs)[:, 1:][running]
    )
    # The adapter's step counter restarts with every episode.
    time = np.asarray(traj["state"].time)
    np.testing.assert_array_equal(time[:, 1:][done[:, :-1]], 0)


def test_brax_time_limit_truncates():
    pytest.importorskip("brax")
    env, params = make("brax::fast", episode_length=7)
    assert params.max_steps_in_episode == 7
    traj = rollout(
        env, params, jax.random.key(1), policy=_sample, num_envs=2, num_steps=21
    )
    truncated = np.asarray(traj["truncated"])
    expected = np.zeros_like(truncated)
    expected[:, 6::7] = True
    np.testing.assert_array_equal(truncated, expected)
    assert not np.asarray(traj["terminated"]).any()


def test_unknown_id_lists_close_matches():
    pytest.importorskip("brax")
    with pytest.raises(ValueError, match="Did you mean 'brax::ant'"):
        make("brax::ants")


def test_missing_backend_names_the_extra(monkeypatch):
    entry = _make._backend("no_such_package_xyz", "brax", "_brax", "make_brax")
    monkeypatch.setitem(_make._NAMESPACES, "brax", entry)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'memrl_eqx\[brax\]'"):
        make("brax::ant")
    # Listing every id skips backends that are not installed.
    assert not [i for i in list_envs() if i.startswith("brax::")]


def test_backends_are_imported_lazily():
    # `import memrl_eqx` imports no backend (checked in a fresh interpreter).
    import subprocess
    import sys

    code = (
        "import sys, memrl_eqx, memrl_eqx.envs; "
        "print([m for m in ('brax', 'craftax', 'navix', 'xminigrid', 'jaxmarl', "
        "'gxm', 'mujoco_playground', 'popgym_arcade') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_gxm_id_without_a_library_names_the_form():
    pytest.importorskip("gxm")
    with pytest.raises(ValueError, match="gxm ids are 'Library/Name'"):
        make("gxm::CartPole-v1")


def test_gxm_cannot_list_its_ids():
    if importlib.util.find_spec("gxm") is None:
        pytest.skip("gxm is not installed")
    with pytest.raises(ValueError, match="cannot list"):
        list_envs("gxm")
