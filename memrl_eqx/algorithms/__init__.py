"""Training algorithms: pure, jitted, vmappable over seeds."""

from ._ppo import PPO as PPO, PPOConfig as PPOConfig, PPOState as PPOState
from ._returns import gae as gae
