"""POPGym's published PPO scores (Morad et al., ICLR 2023), as data.

Only the figures we have a source for are here; a task, level or model that is
absent has no known figure (it is never filled in or estimated).
"""

import dataclasses


CITATION = (
    "Steven Morad, Ryan Kortvelesy, Matteo Bettini, Stephan Liwicki and Amanda "
    "Prorok. POPGym: Benchmarking Partially Observable Reinforcement Learning. "
    "ICLR 2023 (arXiv:2303.01859), Appendix B, Table 3."
)
"""The paper the published figures come from."""

BUDGET: dict[str, object] = {
    "algorithm": "PPO (RLlib)",
    "total_steps": 15_000_000,
    "trials": 3,
    "train_batch": 65_536,
    "num_workers_x_envs": "4 x 16",
    "rollout_length": 1024,
    "sgd_minibatch": 8_192,
    "max_sequence_length": 1024,
    "num_sgd_passes": 30,
    "learning_rate": 5e-5,
    "gamma": 0.99,
    "gae_lambda": 1.0,
    "clip": 0.3,
    "entropy_coefficient": 0.0,
    "value_coefficient": 1.0,
    "memory_size": 256,
    "pre_post_layer_width": 128,
    "inputs": "observation and previous action (PreviousAction wrapper)",
}
"""How the published figures were obtained: POPGym's PPO protocol, per run
(popgym's `baselines/ppo.py`; the settings not given there are RLlib's
defaults)."""

SOURCE = (
    "The published figures are a third-party transcription of the paper's "
    "Appendix B, Table 3, not yet checked figure by figure against the paper."
)
"""Where the figures of `PUBLISHED` were read and how sure they are."""


@dataclasses.dataclass(frozen=True)
class PublishedMMER:
    """One published figure: POPGym's MMER (see [`memrl_eqx.bench.mmer`][]) of a
    model on a task, over 3 trials of 15M steps of PPO.

    **Arguments:**

    - `mean`: the mean MMER over the trials, in [-1, 1].
    - `sd`: its standard deviation over the trials, or None where the source
      gives no spread.
    """

    mean: float
    sd: float | None = None


_ = PublishedMMER

# PPO-GRU, every task and level the transcription has (mean, sd). The paper's
# PositionOnlyCartPole is `StatelessCartPole` here.
_GRU = {
    "RepeatPreviousEasy": _(1.000, 0.000),
    "RepeatPreviousMedium": _(-0.315, 0.017),
    "RepeatPreviousHard": _(-0.428, 0.002),
    "RepeatFirstEasy": _(1.000, 0.000),
    "RepeatFirstMedium": _(1.000, 0.000),
    "RepeatFirstHard": _(0.940, 0.012),
    "CountRecallEasy": _(0.177, 0.005),
    "CountRecallMedium": _(-0.528, 0.001),
    "CountRecallHard": _(-0.475, 0.006),
    "AutoencodeEasy": _(-0.283, 0.029),
    "AutoencodeMedium": _(-0.425, 0.018),
    "AutoencodeHard": _(-0.456, 0.009),
    "HigherLowerEasy": _(0.529, 0.002),
    "HigherLowerMedium": _(0.511, 0.002),
    "HigherLowerHard": _(0.506, 0.001),
    "MultiarmedBanditEasy": _(0.619, 0.007),
    "MultiarmedBanditMedium": _(0.538, 0.036),
    "MultiarmedBanditHard": _(0.516, 0.083),
    "StatelessCartPoleEasy": _(1.000),
    "StatelessCartPoleMedium": _(1.000),
    "StatelessCartPoleHard": _(1.000),
    "NoisyStatelessCartPoleEasy": _(0.995, 0.000),
    "NoisyStatelessCartPoleMedium": _(0.642, 0.012),
    "NoisyStatelessCartPoleHard": _(0.390, 0.007),
}

PUBLISHED: dict[str, dict[str, PublishedMMER]] = {
    "gru": _GRU,
    # The best model of a task where it is not the GRU, as the source names it.
    "lstm": {"CountRecallEasy": _(0.509)},
    "elman": {"MultiarmedBanditEasy": _(0.631)},
    "indrnn": {
        "RepeatFirstHard": _(0.969),
        "NoisyStatelessCartPoleMedium": _(0.659),
        "NoisyStatelessCartPoleHard": _(0.404),
    },
    "lmu": {"RepeatPreviousMedium": _(0.789), "RepeatPreviousHard": _(0.191)},
}
"""POPGym's published PPO MMER, `PUBLISHED[model][task]`, for the models and
tasks whose figure we have (see `SOURCE`): the GRU on 8 of the 15 tasks at every
level, and the best model of some tasks. Models are named as
`memrl_eqx.TORSOS` names them (`"gru"`, `"lstm"`, `"elman"`, `"indrnn"`;
`"lmu"` has no torso here); tasks as `memrl_eqx.envs.make("popgym::<task>")`
names them. Absent: Battleship, Concentration, MineSweeper, StatelessPendulum,
NoisyStatelessPendulum, LabyrinthEscape, LabyrinthExplore, and every MLP, S4D
and other model's column."""

del _


def published_mmer(task: str, model: str = "gru") -> PublishedMMER | None:
    """POPGym's published PPO MMER of `model` on `task`, or None where no figure
    is known (see [`memrl_eqx.bench.PUBLISHED`][]).

    **Arguments:**

    - `task`: a POPGym task and level, e.g. `"RepeatFirstEasy"`.
    - `model`: the model, e.g. `"gru"` (default) or `"lstm"`.

    **Returns:** a [`memrl_eqx.bench.PublishedMMER`][] or None.

    **Example:**

    ```python
    from memrl_eqx.bench import published_mmer

    assert published_mmer("CountRecallEasy").mean == 0.177
    assert published_mmer("CountRecallEasy", "lstm").mean == 0.509
    assert published_mmer("BattleshipEasy") is None  # not known
    ```
    """
    return PUBLISHED.get(model, {}).get(task)
