from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer, PRNGKeyArray

from ._validation import _as_int


def _payout_one_hot(payout: Bool[Array, ""]) -> Float[Array, "2"]:
    return jax.nn.one_hot(payout.astype(jnp.int32), 2, dtype=jnp.float32)


class MultiarmedBanditState(eqx.Module):
    """The state of a [`memrl_eqx.envs.popgym.MultiarmedBandit`][] episode (the
    information POPGym's `MultiarmedBandit.get_state` gives, and the time).

    **Fields:**

    - `probs`: each arm's probability of paying out, drawn at reset. Shape
        `(num_bandits,)`, dtype float32, in `[0, 1)`.
    - `time`: the number of steps taken. Shape `()`, dtype int32, in
        `0..max_steps_in_episode`.
    """

    probs: Float[Array, " num_bandits"]
    time: Int[Array, ""]


class MultiarmedBandit(environment.Environment[MultiarmedBanditState, Any]):
    """POPGym's Multiarmed Bandit: find the best of `num_bandits` arms within an
    episode, then exploit it.

    At reset every arm is given a payout probability drawn uniformly from
    `[0, 1)`, fixed for the episode and hidden. The action is an arm, in
    `0..num_bandits - 1`; pulling arm `a` pays out with probability `probs[a]`,
    rewarded `+1 / max_steps_in_episode`, and otherwise is rewarded
    `-1 / max_steps_in_episode`. The episode return is therefore in `[-1, 1]`:
    its expectation is `2 * mean(probs) - 1` for a uniformly random policy (`0`
    over episodes) and `2 * max(probs) - 1` for one that always pulls the best
    arm (`(n - 1) / (n + 1)` over episodes, for `n = num_bandits`).

    The observation is whether the last pull paid out, one-hot:
    `Float[Array, "2"]`, `[1, 0]` for no payout and `[0, 1]` for a payout. At
    reset it is `[1, 0]`, as POPGym's observation there is `0`. As in POPGym, the
    arm pulled is *not* part of the observation: the task tests memory of the
    agent's own actions and their outcomes, and agents are expected to see
    their previous action (POPGym marks the task `obs_requires_prev_action`;
    memrl_eqx's agents condition on `Timestep.prev_action`).

    There is no terminal state: the episode is *truncated* after
    `params.max_steps_in_episode` steps (gymnax's `EnvParams`).

    **Arguments:**

    - `num_bandits`: the number of arms (POPGym's Easy/Medium/Hard use
        10/20/30). Must be at least 1.
    - `max_steps_in_episode`: the episode length, which also sets the reward
        scale (POPGym's Easy/Medium/Hard use 200/400/600). Must be at least 1.

    All keyword only; the defaults are `num_bandits=10`, `max_steps_in_episode=200`.
    """

    num_bandits: int
    max_steps_in_episode: int

    def __init__(self, *, num_bandits: int = 10, max_steps_in_episode: int = 200):
        super().__init__()
        num_bandits = _as_int("num_bandits", num_bandits)
        max_steps_in_episode = _as_int("max_steps_in_episode", max_steps_in_episode)
        if num_bandits < 1:
            raise ValueError(f"num_bandits must be at least 1, got {num_bandits}.")
        if max_steps_in_episode < 1:
            raise ValueError(
                f"max_steps_in_episode must be at least 1, got {max_steps_in_episode}."
            )
        self.num_bandits = num_bandits
        self.max_steps_in_episode = max_steps_in_episode

    @property
    def default_params(self) -> environment.EnvParams:
        """gymnax parameters; `max_steps_in_episode` is the task's episode length."""
        return environment.EnvParams(max_steps_in_episode=self.max_steps_in_episode)

    def reset_env(
        self, key: PRNGKeyArray, params: Any
    ) -> tuple[Float[Array, "2"], MultiarmedBanditState]:
        """Draws the arms' payout probabilities."""
        del params
        probs = jax.random.uniform(key, (self.num_bandits,), dtype=jnp.float32)
        state = MultiarmedBanditState(probs=probs, time=jnp.array(0, dtype=jnp.int32))
        return _payout_one_hot(jnp.array(False)), state

    def step_env(
        self,
        key: PRNGKeyArray,
        state: MultiarmedBanditState,
        action: Integer[ArrayLike, ""],
        params: Any,
    ) -> tuple[
        Float[Array, "2"],
        MultiarmedBanditState,
        Float[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        """Pulls arm `action`."""
        action = jnp.asarray(action).astype(jnp.int32)
        payout = jax.random.uniform(key, (), dtype=jnp.float32) < state.probs[action]
        scale = jnp.reciprocal(
            jnp.asarray(params.max_steps_in_episode).astype(jnp.float32)
        )
        reward = jnp.where(payout, scale, -scale)
        state = MultiarmedBanditState(probs=state.probs, time=state.time + 1)
        return _payout_one_hot(payout), state, reward, jnp.array(False), {}

    def is_truncated(
        self, state: MultiarmedBanditState, params: Any
    ) -> Bool[Array, ""]:
        """Whether `params.max_steps_in_episode` steps have been taken."""
        return state.time >= params.max_steps_in_episode

    def is_terminated(
        self, state: MultiarmedBanditState, params: Any
    ) -> Bool[Array, ""]:
        """Always `False`: the episode only ends at the time limit."""
        del state, params
        return jnp.array(False)

    @property
    def num_actions(self) -> int:
        return self.num_bandits

    def action_space(self, params: Any = None) -> spaces.Discrete:
        """`Discrete(num_bandits)`: an arm."""
        return spaces.Discrete(self.num_bandits)

    def observation_space(self, params: Any = None) -> spaces.Box:
        """`Box(0, 1, (2,), float32)`: whether the last pull paid out, one-hot."""
        return spaces.Box(0.0, 1.0, (2,), dtype=jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "probs": spaces.Box(0.0, 1.0, (self.num_bandits,), jnp.float32),
                "time": spaces.Discrete(self.max_steps_in_episode + 1),
            }
        )


class MultiarmedBanditEasy(MultiarmedBandit):
    """POPGym's Multiarmed Bandit Easy: 10 arms, 200 steps."""

    def __init__(self):
        super().__init__(num_bandits=10, max_steps_in_episode=200)


class MultiarmedBanditMedium(MultiarmedBandit):
    """POPGym's Multiarmed Bandit Medium: 20 arms, 400 steps."""

    def __init__(self):
        super().__init__(num_bandits=20, max_steps_in_episode=400)


class MultiarmedBanditHard(MultiarmedBandit):
    """POPGym's Multiarmed Bandit Hard: 30 arms, 600 steps."""

    def __init__(self):
        super().__init__(num_bandits=30, max_steps_in_episode=600)
