"""A native JAX re-implementation of POPGym's memory tasks.

Morad et al., "POPGym: Benchmarking Partially Observable Reinforcement Learning",
ICLR 2023. Every task is a gymnax `Environment`; `memrl_eqx.envs.make` builds
them from ids `"popgym::<Name>"`, e.g. `"popgym::RepeatPreviousEasy"`.
"""

from gymnax.environments.environment import Environment

from ._repeat_previous import (
    RepeatPrevious as RepeatPrevious,
    RepeatPreviousEasy as RepeatPreviousEasy,
    RepeatPreviousHard as RepeatPreviousHard,
    RepeatPreviousMedium as RepeatPreviousMedium,
    RepeatPreviousState as RepeatPreviousState,
)
from ._stateless_cartpole import (
    StatelessCartPole as StatelessCartPole,
    StatelessCartPoleEasy as StatelessCartPoleEasy,
    StatelessCartPoleHard as StatelessCartPoleHard,
    StatelessCartPoleMedium as StatelessCartPoleMedium,
)


# The tasks `make("popgym::<name>", **kwargs)` builds, by name. The family names
# take the task parameters as keyword arguments; the presets take none.
_registry: dict[str, type[Environment]] = {
    cls.__name__: cls
    for cls in (
        RepeatPrevious,
        RepeatPreviousEasy,
        RepeatPreviousMedium,
        RepeatPreviousHard,
        StatelessCartPole,
        StatelessCartPoleEasy,
        StatelessCartPoleMedium,
        StatelessCartPoleHard,
    )
}
