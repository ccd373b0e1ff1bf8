import jax
import numpy as np
import pytest

from memrl_eqx.envs import list_envs, make
from memrl_eqx.envs._make import POPGYM_PORT_ALIASES


# The ids popjaxrl's and popjym's registries list (the same 40 in both).
_PORT_IDS = ["NoisyStatelessMetaCartPole"] + [
    f"{task}{level}"
    for task in (
        "Autoencode",
        "Battleship",
        "StatelessCartPole",
        "NoisyStatelessCartPole",
        "Concentration",
        "CountRecall",
        "HigherLower",
        "Minesweeper",
        "MultiArmedBandit",
        "StatelessPendulum",
        "NoisyStatelessPendulum",
        "RepeatFirst",
        "RepeatPrevious",
    )
    for level in ("Easy", "Medium", "Hard")
]


def test_every_port_id_with_a_counterpart_resolves_to_the_native_task():
    assert set(POPGYM_PORT_ALIASES) == set(_PORT_IDS) - {"NoisyStatelessMetaCartPole"}
    native = set(list_envs("popgym"))
    for namespace in ("popjaxrl", "popjym"):
        assert sorted(list_envs(namespace)) == sorted(
            f"{namespace}::{i}" for i in POPGYM_PORT_ALIASES
        )
        for theirs, ours in POPGYM_PORT_ALIASES.items():
            assert f"popgym::{ours}" in native
            env, params = make(f"{namespace}::{theirs}")
            reference, _ = make(f"popgym::{ours}")
            assert type(env) is type(reference)
    # The renamed ones.
    assert type(make("popjym::MinesweeperHard")[0]).__name__ == "MineSweeperHard"
    assert type(make("popjaxrl::MultiArmedBanditEasy")[0]).__name__ == (
        "MultiarmedBanditEasy"
    )
    # The same task: the same keys give the same episode.
    a, params = make("popjaxrl::RepeatPreviousEasy")
    b, _ = make("popgym::RepeatPreviousEasy")
    obs_a, _ = a.reset(jax.random.key(0), params)
    obs_b, _ = b.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs_a, obs_b)


@pytest.mark.parametrize("namespace", ["popjaxrl", "popjym"])
def test_other_ids_are_a_one_line_error_naming_what_there_is(namespace):
    for name in ("NoisyStatelessMetaCartPole", "Catch", "RepeatPrevious"):
        with pytest.raises(ValueError) as error:
            make(f"{namespace}::{name}")
        message = str(error.value)
        assert "\n" not in message
        assert f"'{namespace}::{name}' has no counterpart" in message
        assert "MinesweeperEasy" in message and "popgym::" in message
    # They stay out of the listing of everything (they repeat popgym's ids).
    assert not any(i.startswith(f"{namespace}::") for i in list_envs())
