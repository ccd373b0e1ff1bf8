"""Training algorithms: pure, jitted, vmappable over seeds."""

from ._dqn import DQN as DQN, DQNConfig as DQNConfig, DQNState as DQNState
from ._dqn_presets import DRQN as DRQN, R2D2 as R2D2
from ._evaluate import evaluate_policy as evaluate_policy
from ._exploration import (
    epsilon_greedy as epsilon_greedy,
    linear_schedule as linear_schedule,
)
from ._multi_agent_ppo import (
    IPPO as IPPO,
    IPPOConfig as IPPOConfig,
    MAPPO as MAPPO,
    MAPPOConfig as MAPPOConfig,
    MultiAgentPPOConfig as MultiAgentPPOConfig,
)
from ._obgd import obgd_step_size as obgd_step_size
from ._offpolicy import Transition as Transition
from ._ppo import PPO as PPO, PPOConfig as PPOConfig, PPOState as PPOState
from ._pqn import PQN as PQN, PQNConfig as PQNConfig, PQNState as PQNState
from ._returns import (
    gae as gae,
    inverse_value_rescale as inverse_value_rescale,
    lambda_returns as lambda_returns,
    n_step_targets as n_step_targets,
    value_rescale as value_rescale,
)
from ._sac import (
    AbstractSoftActorCritic as AbstractSoftActorCritic,
    SAC as SAC,
    SACConfig as SACConfig,
    SACState as SACState,
)
from ._sacd import SACD as SACD, SACDConfig as SACDConfig
from ._stream_ac import (
    sparse_init as sparse_init,
    stream_actor_critic as stream_actor_critic,
    StreamAC as StreamAC,
    StreamACConfig as StreamACConfig,
    StreamACState as StreamACState,
)
from ._target import polyak_update as polyak_update
