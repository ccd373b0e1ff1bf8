import gymnax
import jax
import jax.numpy as jnp
import pytest
from gymnax.environments.classic_control.cartpole import CartPole
from gymnax.environments.environment import Environment

from memrl_eqx.envs import list_envs, make, popgym


# POPGym's 15 memory tasks (the paper's names) and the package's Velocity Only
# CartPole, each a family and three presets.
POPGYM_FAMILIES = [
    "RepeatFirst",
    "RepeatPrevious",
    "CountRecall",
    "Autoencode",
    "HigherLower",
    "Concentration",
    "MultiarmedBandit",
    "MineSweeper",
    "Battleship",
    "StatelessCartPole",
    "NoisyStatelessCartPole",
    "VelocityOnlyCartPole",
    "StatelessPendulum",
    "NoisyStatelessPendulum",
    "LabyrinthEscape",
    "LabyrinthExplore",
]
POPGYM_NAMES = [
    family + level
    for family in POPGYM_FAMILIES
    for level in ("", "Easy", "Medium", "Hard")
]


def test_gymnax_id():
    env, params = make("gymnax::CartPole-v1")
    assert isinstance(env, CartPole)
    assert params == env.default_params
    assert params.max_steps_in_episode == 500
    obs, _ = env.reset(jax.random.key(0), params)
    assert obs.shape == (4,)


def test_gymnax_kwargs_are_passed_on():
    env, _ = make("gymnax::Catch-bsuite", rows=7, columns=3)
    assert (env.rows, env.columns) == (7, 3)


@pytest.mark.parametrize("name", POPGYM_NAMES)
def test_popgym_ids(name):
    env, params = make(f"popgym::{name}")
    assert type(env) is getattr(popgym, name)
    assert isinstance(env, Environment)
    assert params == env.default_params


def test_popgym_family_kwargs():
    env, params = make("popgym::RepeatPrevious", k=2, num_decks=1)
    assert (env.k, env.num_decks) == (2, 1)
    assert params.max_steps_in_episode == 51
    obs, _ = env.reset(jax.random.key(0), params)
    assert obs.shape == (4,) and obs.dtype == jnp.float32

    env, params = make("popgym::StatelessCartPole", max_steps_in_episode=50)
    assert params.max_steps_in_episode == 50


def test_list_envs():
    gymnax_ids = list_envs("gymnax")
    popgym_ids = list_envs("popgym")
    assert gymnax_ids == [f"gymnax::{name}" for name in gymnax.registered_envs]
    assert sorted(popgym_ids) == sorted(f"popgym::{name}" for name in POPGYM_NAMES)
    listed = list_envs()
    assert listed[: len(gymnax_ids) + len(popgym_ids)] == gymnax_ids + popgym_ids
    # The rest are the ids of installed optional backends.
    assert all(i.split("::")[0] not in ("gymnax", "popgym") for i in listed[-1:])
    for env_id in popgym_ids + ["gymnax::CartPole-v1"]:
        make(env_id)  # every listed id resolves


def test_id_without_namespace():
    with pytest.raises(ValueError) as info:
        make("CartPole-v1")
    message = str(info.value)
    assert "'CartPole-v1' has no namespace" in message
    assert "'namespace::name'" in message
    assert "e.g. 'gymnax::CartPole-v1'" in message


def test_unknown_namespace():
    with pytest.raises(ValueError) as info:
        make("brax2::ant")
    message = str(info.value)
    assert "Unknown environment namespace 'brax2'" in message
    valid = (
        "Valid namespaces are: gymnax, popgym, brax, mujoco, craftax, navix, gxm, "
        "popgym_arcade, xminigrid, jaxmarl."
    )
    assert valid in message
    with pytest.raises(ValueError, match="Valid namespaces are: gymnax, popgym"):
        list_envs("brax2")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError) as info:
        make("popgym::RepeatPreviousEsay")
    message = str(info.value)
    assert "Unknown environment 'RepeatPreviousEsay' in namespace 'popgym'" in message
    assert f"which has {len(POPGYM_NAMES)} ids" in message
    assert "Did you mean 'popgym::RepeatPreviousEasy'" in message

    # Case is ignored when matching, not when reporting.
    with pytest.raises(ValueError, match="Did you mean 'gymnax::CartPole-v1'"):
        make("gymnax::cartpole-v1")
    n = len(gymnax.registered_envs)
    with pytest.raises(ValueError, match=f"which has {n} ids"):
        make("gymnax::cartpole-v1")


def test_unknown_name_without_close_match():
    with pytest.raises(ValueError) as info:
        make("popgym::Zzzzzz")
    message = str(info.value)
    assert "No id is close" in message
    assert "list_envs('popgym')" in message
    assert "Did you mean" not in message


def test_popgym_keyword_arguments_are_checked():
    with pytest.raises(
        ValueError, match="is a preset and takes no keyword arguments; got k"
    ):
        make("popgym::RepeatPreviousEasy", k=3)
    with pytest.raises(
        ValueError, match="takes the keyword arguments num_decks, k; got decks"
    ):
        make("popgym::RepeatPrevious", decks=2)
    with pytest.raises(ValueError, match="1 <= k < num_decks"):
        make("popgym::RepeatPrevious", k=100, num_decks=1)
