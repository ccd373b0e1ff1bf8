"""A native JAX re-implementation of POPGym's memory tasks.

Morad et al., "POPGym: Benchmarking Partially Observable Reinforcement Learning",
ICLR 2023, as its package (`popgym` 1.0.7) implements them. Every task is a gymnax
`Environment`, in Easy, Medium and Hard presets with POPGym's reward scaling;
`memrl_eqx.envs.make` builds them from ids
`"popgym::<Name>"`, e.g. `"popgym::RepeatPreviousEasy"`, and the family names
(`"popgym::RepeatPrevious"`) take the task parameters as keyword arguments.
"""

from gymnax.environments.environment import Environment

from ._autoencode import (
    Autoencode as Autoencode,
    AutoencodeEasy as AutoencodeEasy,
    AutoencodeHard as AutoencodeHard,
    AutoencodeMedium as AutoencodeMedium,
    AutoencodeState as AutoencodeState,
)
from ._battleship import (
    Battleship as Battleship,
    BattleshipEasy as BattleshipEasy,
    BattleshipHard as BattleshipHard,
    BattleshipMedium as BattleshipMedium,
    BattleshipState as BattleshipState,
)
from ._concentration import (
    Concentration as Concentration,
    ConcentrationEasy as ConcentrationEasy,
    ConcentrationHard as ConcentrationHard,
    ConcentrationMedium as ConcentrationMedium,
    ConcentrationState as ConcentrationState,
)
from ._count_recall import (
    CountRecall as CountRecall,
    CountRecallEasy as CountRecallEasy,
    CountRecallHard as CountRecallHard,
    CountRecallMedium as CountRecallMedium,
    CountRecallState as CountRecallState,
)
from ._higher_lower import (
    HigherLower as HigherLower,
    HigherLowerEasy as HigherLowerEasy,
    HigherLowerHard as HigherLowerHard,
    HigherLowerMedium as HigherLowerMedium,
    HigherLowerState as HigherLowerState,
)
from ._labyrinth import (
    LabyrinthEscape as LabyrinthEscape,
    LabyrinthEscapeEasy as LabyrinthEscapeEasy,
    LabyrinthEscapeHard as LabyrinthEscapeHard,
    LabyrinthEscapeMedium as LabyrinthEscapeMedium,
    LabyrinthExplore as LabyrinthExplore,
    LabyrinthExploreEasy as LabyrinthExploreEasy,
    LabyrinthExploreHard as LabyrinthExploreHard,
    LabyrinthExploreMedium as LabyrinthExploreMedium,
    LabyrinthState as LabyrinthState,
)
from ._minesweeper import (
    MineSweeper as MineSweeper,
    MineSweeperEasy as MineSweeperEasy,
    MineSweeperHard as MineSweeperHard,
    MineSweeperMedium as MineSweeperMedium,
    MineSweeperState as MineSweeperState,
)
from ._multiarmed_bandit import (
    MultiarmedBandit as MultiarmedBandit,
    MultiarmedBanditEasy as MultiarmedBanditEasy,
    MultiarmedBanditHard as MultiarmedBanditHard,
    MultiarmedBanditMedium as MultiarmedBanditMedium,
    MultiarmedBanditState as MultiarmedBanditState,
)
from ._noisy_stateless_cartpole import (
    NoisyStatelessCartPole as NoisyStatelessCartPole,
    NoisyStatelessCartPoleEasy as NoisyStatelessCartPoleEasy,
    NoisyStatelessCartPoleHard as NoisyStatelessCartPoleHard,
    NoisyStatelessCartPoleMedium as NoisyStatelessCartPoleMedium,
)
from ._repeat_first import (
    RepeatFirst as RepeatFirst,
    RepeatFirstEasy as RepeatFirstEasy,
    RepeatFirstHard as RepeatFirstHard,
    RepeatFirstMedium as RepeatFirstMedium,
    RepeatFirstState as RepeatFirstState,
)
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
from ._stateless_pendulum import (
    NoisyStatelessPendulum as NoisyStatelessPendulum,
    NoisyStatelessPendulumEasy as NoisyStatelessPendulumEasy,
    NoisyStatelessPendulumHard as NoisyStatelessPendulumHard,
    NoisyStatelessPendulumMedium as NoisyStatelessPendulumMedium,
    StatelessPendulum as StatelessPendulum,
    StatelessPendulumEasy as StatelessPendulumEasy,
    StatelessPendulumHard as StatelessPendulumHard,
    StatelessPendulumMedium as StatelessPendulumMedium,
)
from ._velocity_only_cartpole import (
    VelocityOnlyCartPole as VelocityOnlyCartPole,
    VelocityOnlyCartPoleEasy as VelocityOnlyCartPoleEasy,
    VelocityOnlyCartPoleHard as VelocityOnlyCartPoleHard,
    VelocityOnlyCartPoleMedium as VelocityOnlyCartPoleMedium,
)


# The tasks `make("popgym::<name>", **kwargs)` builds, by name. The family names
# take the task parameters as keyword arguments; the presets take none.
_registry: dict[str, type[Environment]] = {
    cls.__name__: cls
    for cls in (
        RepeatFirst,
        RepeatFirstEasy,
        RepeatFirstMedium,
        RepeatFirstHard,
        RepeatPrevious,
        RepeatPreviousEasy,
        RepeatPreviousMedium,
        RepeatPreviousHard,
        CountRecall,
        CountRecallEasy,
        CountRecallMedium,
        CountRecallHard,
        Autoencode,
        AutoencodeEasy,
        AutoencodeMedium,
        AutoencodeHard,
        HigherLower,
        HigherLowerEasy,
        HigherLowerMedium,
        HigherLowerHard,
        Concentration,
        ConcentrationEasy,
        ConcentrationMedium,
        ConcentrationHard,
        MultiarmedBandit,
        MultiarmedBanditEasy,
        MultiarmedBanditMedium,
        MultiarmedBanditHard,
        MineSweeper,
        MineSweeperEasy,
        MineSweeperMedium,
        MineSweeperHard,
        Battleship,
        BattleshipEasy,
        BattleshipMedium,
        BattleshipHard,
        StatelessCartPole,
        StatelessCartPoleEasy,
        StatelessCartPoleMedium,
        StatelessCartPoleHard,
        NoisyStatelessCartPole,
        NoisyStatelessCartPoleEasy,
        NoisyStatelessCartPoleMedium,
        NoisyStatelessCartPoleHard,
        VelocityOnlyCartPole,
        VelocityOnlyCartPoleEasy,
        VelocityOnlyCartPoleMedium,
        VelocityOnlyCartPoleHard,
        StatelessPendulum,
        StatelessPendulumEasy,
        StatelessPendulumMedium,
        StatelessPendulumHard,
        NoisyStatelessPendulum,
        NoisyStatelessPendulumEasy,
        NoisyStatelessPendulumMedium,
        NoisyStatelessPendulumHard,
        LabyrinthEscape,
        LabyrinthEscapeEasy,
        LabyrinthEscapeMedium,
        LabyrinthEscapeHard,
        LabyrinthExplore,
        LabyrinthExploreEasy,
        LabyrinthExploreMedium,
        LabyrinthExploreHard,
    )
}
