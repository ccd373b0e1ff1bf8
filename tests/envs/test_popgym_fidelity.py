"""Fidelity against the original POPGym (PyPI `popgym` 1.0.7, numpy and gymnasium).

Each test puts POPGym's environment and ours in the same hidden state (a maze, a
board, a deck order, a cart's state), drives both with the same actions step for
step, and compares what they return: observations (POPGym's integers one-hot
encoded as ours are), rewards, terminations and truncations. The tests are
skipped only where `popgym` (in the `test` extra) is not installed.
"""

import collections
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memrl_eqx.envs import popgym as ours
from memrl_eqx.envs.popgym._labyrinth import LabyrinthState


pytest.importorskip("popgym")

MOVES = [(0, -1), (0, 1), (-1, 0), (1, 0)]  # left, right, up, down


@eqx.filter_jit
def _run_ours(env, state, actions, keys):
    """Steps `env` (without auto-reset) from `state` through `actions`: the
    observations, rewards, terminations, truncations and states of every step."""
    params = env.default_params

    def body(state, xs):
        action, key = xs
        obs, state, reward, terminated, _ = env.step_env(key, state, action, params)
        truncated = env.is_truncated(state, params)
        return state, (obs, reward, terminated, truncated, state)

    _, out = jax.lax.scan(body, state, (actions, keys))
    return out


def _compare(
    env,
    state,
    theirs,
    actions,
    encode,
    *,
    keys=None,
    to_popgym=lambda action: action,
    before_step=None,
    atol=0.0,
):
    """Drives POPGym's `theirs` and ours from the same state through `actions`
    until the episode ends. `encode(obs, action)` maps POPGym's observation after
    `action` to ours, `to_popgym` our action to POPGym's, and `before_step(t,
    state)`, where given, sets POPGym's state to ours before step `t`. Returns the
    number of steps taken and whether the episode was terminated (else truncated,
    or still running after the last action)."""
    if keys is None:
        keys = jax.random.split(jax.random.key(0), len(actions))
    obs, reward, terminated, truncated, states = jax.device_get(
        _run_ours(env, state, jnp.asarray(actions), keys)
    )
    for t, action in enumerate(np.asarray(actions)):
        if before_step is not None:
            now = state if t == 0 else jax.tree.map(lambda x: x[t - 1], states)
            before_step(t, now)
        p_obs, p_reward, p_terminated, p_truncated, _ = theirs.step(to_popgym(action))
        where = f"step {t + 1}"
        expected = encode(p_obs, action)
        np.testing.assert_allclose(obs[t], expected, atol=atol, err_msg=where)
        np.testing.assert_allclose(
            reward[t], p_reward, rtol=1e-5, atol=max(atol, 1e-7), err_msg=where
        )
        assert bool(terminated[t]) == bool(p_terminated), where
        # POPGym can flag a truncation on a terminating step; ours says which.
        assert bool(truncated[t]) == (bool(p_truncated) and not p_terminated), where
        if p_terminated or p_truncated:
            return t + 1, bool(p_terminated)
    return len(actions), False


class _Draws:
    """A stand-in for a POPGym environment's `np_random` that hands out the
    random numbers ours drew, in order: the hidden draws made the same."""

    def __init__(self, uniform=(), normal=()):
        self.uniforms = collections.deque(np.asarray(u) for u in uniform)
        self.normals = collections.deque(np.asarray(z) for z in normal)

    def random(self, size=None, dtype=np.float64):
        return self.uniforms.popleft().astype(dtype)

    def uniform(self, low=0.0, high=1.0, size=None):
        value = self.uniforms.popleft().astype(np.float64)
        assert np.all(low <= value) and np.all(value <= high)
        return value

    def normal(self, loc=0.0, scale=1.0, size=None):
        return loc + scale * self.normals.popleft().astype(np.float64)


# Labyrinth Escape / Explore: POPGym's own mazes (mazelib), copied into our state.


def _distances(grid, source):
    """Breadth-first distances over the squares that are not walls (-1: none)."""
    dist = np.full(grid.shape, -1)
    dist[tuple(source)] = 0
    queue = collections.deque([tuple(source)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1]
            if inside and grid[nr, nc] != 1 and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


def _walk_to(grid, start, goal):
    """The moves of a shortest path from `start` to `goal`."""
    dist = _distances(grid, goal)
    (r, c), moves = start, []
    while dist[r, c] > 0:
        for move, (dr, dc) in enumerate(MOVES):
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < grid.shape[0] and 0 <= nc < grid.shape[1]
            if inside and dist[nr, nc] == dist[r, c] - 1:
                moves.append(move)
                r, c = nr, nc
                break
    return moves


def _tour(grid, start):
    """Moves that visit every reachable square: to each unvisited square in turn
    by a shortest path from where the walk stands."""
    position, moves = tuple(start), []
    todo = {tuple(s) for s in np.argwhere(_distances(grid, start) >= 0)}
    todo.discard(position)
    while todo:
        dist = _distances(grid, position)
        target = min(todo, key=lambda square: dist[square])
        path = _walk_to(grid, position, target)
        for move in path:
            dr, dc = MOVES[move]
            position = (position[0] + dr, position[1] + dc)
            todo.discard(position)
        moves += path
    return moves


def _maze_obs(obs, action=None):
    """POPGym's maze observation (9 square types, then the last move) as ours."""
    del action
    obs = np.asarray(obs)
    return np.concatenate([np.eye(4)[obs[:9]].ravel(), np.eye(5)[obs[9]]])


@pytest.mark.parametrize("family", ["LabyrinthEscape", "LabyrinthExplore"])
def test_labyrinth_matches_popgym(family):
    pytest.importorskip("mazelib")  # POPGym's `navigation` extra
    from popgym.envs import labyrinth_escape, labyrinth_explore

    module = labyrinth_escape if family == "LabyrinthEscape" else labyrinth_explore
    env = getattr(ours, family + "Easy")()
    length = env.max_steps_in_episode
    assert length == 1023
    rng = np.random.default_rng(0)
    ends, starts = collections.Counter(), set()
    for seed in range(12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            theirs = getattr(module, family + "Easy")()
            p_obs, _ = theirs.reset(seed=seed)
        grid = np.asarray(theirs.maze.grid, dtype=np.int8)
        start = np.asarray(theirs.position, dtype=np.int32)
        state = LabyrinthState(
            grid=jnp.asarray(grid),
            position=jnp.asarray(start),
            explored=jnp.asarray(theirs.explored == 1),
            last_action=jnp.array(4, dtype=jnp.int32),
            time=jnp.array(0, dtype=jnp.int32),
        )
        np.testing.assert_array_equal(env._observation(state), _maze_obs(p_obs))
        # Every other episode follows a plan to the end (the exit, or a tour of
        # the maze) and the rest walk at random until they are truncated.
        actions = rng.integers(0, 4, size=length)
        if seed % 2:
            if family == "LabyrinthEscape":
                plan = _walk_to(grid, start, np.argwhere(grid == 3)[0])
            else:
                plan = _tour(grid, start)
            assert len(plan) < length
            actions[: len(plan)] = plan
        steps, terminated = _compare(env, state, theirs, actions, _maze_obs)
        ends[terminated] += 1
        starts.add("north" if start[0] == 0 else "west" if start[1] == 0 else "other")
        if not terminated:
            assert steps == length
    # Both ways to end, and starts on the walls where POPGym's view is off centre.
    assert ends[True] >= 6 and ends[False] >= 2
    assert {"north", "west"} <= starts


# Card games: POPGym's decks stacked in the order ours dealt.

LEVELS = ("Easy", "Medium", "Hard")


def _cards(kind_of, kinds):
    """Cards of a POPGym deck, whose card `i` is of kind `kind_of[i]`, one of
    each kind in `kinds` in turn, no card twice."""
    pools = {kind: list(np.flatnonzero(kind_of == kind)) for kind in np.unique(kind_of)}
    return np.array([pools[kind].pop() for kind in kinds])


def _stack(deck, idx):
    """Makes the next reset of the POPGym `deck` lay its cards as `idx` instead of
    shuffling them (a deck deals from the end of `idx`)."""

    def reset(shuffle=True, rng=None):
        del shuffle, rng
        for hand in deck.hands.values():
            hand.clear()
        deck.deck_len = deck.num_cards
        deck.idx = np.array(idx)

    deck.reset = reset


def _one_hot(*sizes):
    """`encode` for POPGym observations of integers (or tuples of them): each
    one-hot over its size, concatenated."""

    def encode(obs, action=None):
        del action
        parts = np.atleast_1d(np.asarray(obs))
        return np.concatenate([np.eye(n)[i] for n, i in zip(sizes, parts)])

    return encode


def _suits(obs):
    return np.argmax(obs, axis=-1)


# family: (POPGym module, our observation -> the kinds dealt, POPGym's deck's kinds,
# our observation as POPGym's encoded, the number of steps, the right actions)
CARD_GAMES = {
    "RepeatFirst": (
        "repeat_first",
        lambda env: _one_hot(4),
        lambda env, dealt: np.full(env.num_cards - 1, dealt[0]),
    ),
    "RepeatPrevious": (
        "repeat_previous",
        lambda env: _one_hot(4),
        lambda env, dealt: np.concatenate(
            [np.zeros(env.k - 1, dtype=int), dealt[: env.num_cards - env.k]]
        ),
    ),
    "HigherLower": (
        "higher_lower",
        lambda env: _one_hot(13),
        # 0 guesses higher; a tie scores 0 whatever the guess.
        lambda env, dealt: (dealt[1:] <= dealt[:-1]).astype(int),
    ),
    "Autoencode": (
        "autoencode",
        lambda env: _one_hot(2, 4),
        # Watch (any action), then recite backwards.
        lambda env, dealt: np.concatenate(
            [np.zeros(env.num_cards - 1, dtype=int), dealt[::-1]]
        ),
    ),
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family", [*CARD_GAMES])
def test_card_games_match_popgym(family, level):
    import importlib

    module_name, encoder, right = CARD_GAMES[family]
    module = importlib.import_module(f"popgym.envs.{module_name}")
    env = getattr(ours, family + level)()
    params = env.default_params
    encode = encoder(env)
    rng = np.random.default_rng(1)
    for seed in range(2):
        reset_key, key = jax.random.split(jax.random.key(seed))
        obs0, state = env.reset_env(reset_key, params)
        steps = params.max_steps_in_episode
        keys = jax.random.split(key, steps)
        actions = rng.integers(0, env.num_actions, size=steps)
        obs = np.asarray(_run_ours(env, state, jnp.asarray(actions), keys)[0])
        # The suits (ranks) dealt, at reset and after each dealing step.
        if family == "Autoencode":
            dealt = _suits(
                np.concatenate([obs0[None], obs[: env.num_cards - 1]])[:, 2:]
            )
        else:
            dealt = _suits(np.concatenate([obs0[None], obs]))
        # Half the actions right, half random.
        actions = np.where(rng.random(steps) < 0.5, right(env, dealt), actions)
        theirs = getattr(module, family + level)()
        deck = theirs.deck
        kind_of = deck.ranks_idx if family == "HigherLower" else deck.suits_idx
        _stack(deck, _cards(kind_of, dealt)[::-1])
        p_obs, _ = theirs.reset(seed=seed)
        np.testing.assert_array_equal(obs0, encode(p_obs))
        length, terminated = _compare(env, state, theirs, actions, encode, keys=keys)
        assert terminated and length == steps


@pytest.mark.parametrize("level", LEVELS)
def test_count_recall_matches_popgym(level):
    from popgym.envs import count_recall

    env = getattr(ours, "CountRecall" + level)()
    params = env.default_params
    kinds = env.num_kinds
    encode = _one_hot(kinds, kinds)
    rng = np.random.default_rng(2)
    theirs = getattr(count_recall, "CountRecall" + level)()
    # POPGym's action space, as ours: every count from 0 to max_count.
    assert theirs.action_space.n == env.num_actions == env.max_count + 1
    for seed in range(2):
        reset_key, key = jax.random.split(jax.random.key(seed))
        obs0, state = env.reset_env(reset_key, params)
        steps = params.max_steps_in_episode
        keys = jax.random.split(key, steps)
        actions = rng.integers(0, env.num_actions, size=steps)
        obs = np.asarray(_run_ours(env, state, jnp.asarray(actions), keys)[0])
        obs = np.concatenate([obs0[None], obs])
        values, queries = _suits(obs[:, :kinds]), _suits(obs[:, kinds:])
        # The right answer to step t: the count of the kind queried before it.
        counts = np.array(
            [(values[:t] == queries[t - 1]).sum() for t in range(1, steps + 1)]
        )
        actions = np.where(rng.random(steps) < 0.5, counts, actions)
        theirs = getattr(count_recall, "CountRecall" + level)()
        kind_of = theirs.deck_idx_type
        _stack(theirs.value_deck, _cards(kind_of, values)[::-1])
        _stack(theirs.query_deck, _cards(kind_of, queries)[::-1])
        p_obs, _ = theirs.reset(seed=seed)
        np.testing.assert_array_equal(obs0, encode(p_obs))
        length, terminated = _compare(env, state, theirs, actions, encode, keys=keys)
        assert terminated and length == steps


@pytest.mark.parametrize("level", LEVELS)
def test_concentration_matches_popgym(level):
    from popgym.envs import concentration

    env = getattr(ours, "Concentration" + level)()
    params = env.default_params
    n, values_count = env.num_cards, env.num_values
    encode = lambda obs, action=None: np.eye(values_count + 1)[obs].ravel()  # noqa: E731
    rng = np.random.default_rng(3)
    ends = collections.Counter()
    for seed in range(2):
        obs0, state = env.reset_env(jax.random.key(seed), params)
        values = np.asarray(state.values)
        # Turn the pairs over in turn (a perfect memory); in the second episode,
        # with random cards among them (mismatches, matched cards turned again).
        pairs = np.concatenate(
            [np.flatnonzero(values == v) for v in range(values_count)]
        )
        steps = params.max_steps_in_episode
        actions = np.resize(pairs, steps)
        if seed:
            actions = np.where(
                rng.random(steps) < 0.3, rng.integers(0, n, steps), actions
            )
        theirs = getattr(concentration, "Concentration" + level)()
        assert theirs.episode_length == steps
        _stack(theirs.deck, _cards(theirs.deck_idx_type, values))
        p_obs, _ = theirs.reset(seed=seed)
        np.testing.assert_array_equal(obs0, encode(p_obs))
        length, terminated = _compare(env, state, theirs, actions, encode)
        ends[terminated] += 1
        if not seed:
            assert terminated and length == n
    assert ends[False] >= 1


# Boards: MineSweeper and Battleship, POPGym's boards set to ours.


@pytest.mark.parametrize("level", LEVELS)
def test_minesweeper_matches_popgym(level):
    from popgym.envs import minesweeper

    env = getattr(ours, "MineSweeper" + level)()
    params = env.default_params
    rows, cols = env.rows, env.cols
    rng = np.random.default_rng(4)

    def encode(obs, action):
        return np.concatenate(
            [
                np.eye(env.num_counts)[obs],
                np.eye(rows)[action // cols],
                np.eye(cols)[action % cols],
            ]
        )

    ends = collections.Counter()
    for seed in range(4):
        obs0, state = env.reset_env(jax.random.key(seed), params)
        mines = np.flatnonzero(np.asarray(state.mines).ravel())
        free = rng.permutation(np.setdiff1d(np.arange(rows * cols), mines))
        # Clear the board; with some tiles clicked twice (seed 1), a mine at the
        # end (seed 2) or early (seed 3).
        actions = free
        if seed == 1:
            actions = np.insert(free, rng.integers(0, len(free), 3), free[:3])
        if seed == 2:
            actions = np.append(free[:-1], mines[0])
        if seed == 3:
            actions = np.insert(free, 2, mines[-1])
        theirs = getattr(minesweeper, "MineSweeper" + level)()
        theirs.reset(seed=seed)
        theirs._np_random = _Draws()
        theirs._np_random.choice = lambda a, size, replace: mines
        p_obs, _ = theirs.reset()
        np.testing.assert_array_equal(
            theirs.hidden_grid.ravel() == 1, state.mines.ravel()
        )
        assert p_obs == 0 and not np.asarray(obs0).any()
        length, terminated = _compare(
            env,
            state,
            theirs,
            actions,
            encode,
            to_popgym=lambda action: np.array([action // cols, action % cols]),
        )
        ends[terminated, length] += 1
    # The time limit: L clicks (seed 1 clicks three tiles twice, so runs out).
    assert ends[False, env.num_free] == 1
    assert ends[True, env.num_free] == 2 and ends[True, 3] == 1


@pytest.mark.parametrize("level", LEVELS)
def test_battleship_matches_popgym(level):
    from popgym.envs import battleship

    env = getattr(ours, "Battleship" + level)()
    params = env.default_params
    size = env.board_size
    rng = np.random.default_rng(5)

    def encode(obs, action):
        return np.concatenate(
            [np.eye(2)[obs], np.eye(size)[action // size], np.eye(size)[action % size]]
        )

    ends = collections.Counter()
    for seed in range(2):
        obs0, state = env.reset_env(jax.random.key(seed), params)
        ships = np.asarray(state.ships)
        steps = params.max_steps_in_episode
        # Random shots (repeats too) until the time limit, or every ship tile
        # with misses between them.
        actions = rng.integers(0, size * size, steps)
        if seed:
            hits = rng.permutation(np.flatnonzero(ships.ravel()))
            actions = np.insert(
                actions[: 2 * len(hits)], np.arange(len(hits)) * 2, hits
            )
        theirs = getattr(battleship, "Battleship" + level)()
        p_obs, _ = theirs.reset(seed=seed)
        assert p_obs == 0 and not np.asarray(obs0).any()
        theirs.board = ships.astype(np.int8)
        length, terminated = _compare(
            env,
            state,
            theirs,
            actions,
            encode,
            to_popgym=lambda action: np.array([action // size, action % size]),
        )
        ends[terminated] += 1
        assert length == steps or terminated
    assert ends[True] == ends[False] == 1


@pytest.mark.parametrize("level", LEVELS)
def test_multiarmed_bandit_matches_popgym(level):
    from popgym.envs import multiarmed_bandit

    env = getattr(ours, "MultiarmedBandit" + level)()
    params = env.default_params
    steps = params.max_steps_in_episode
    reset_key, key = jax.random.split(jax.random.key(6))
    obs0, state = env.reset_env(reset_key, params)
    keys = jax.random.split(key, steps)
    # The hidden draws: the arms' probabilities, then one uniform per pull.
    pulls = [jax.random.uniform(k, (), dtype=jnp.float32) for k in keys]
    theirs = getattr(multiarmed_bandit, "MultiarmedBandit" + level)()
    theirs.reset(seed=0)
    theirs._np_random = _Draws(uniform=[state.probs, *pulls])
    p_obs, _ = theirs.reset()
    np.testing.assert_array_equal(theirs.bandits, state.probs)
    np.testing.assert_array_equal(obs0, _one_hot(2)(p_obs))  # "no payout"
    actions = np.random.default_rng(6).integers(0, env.num_actions, steps)
    length, terminated = _compare(env, state, theirs, actions, _one_hot(2), keys=keys)
    assert length == steps and not terminated


# Control: gymnasium's CartPole and Pendulum, set to our state before every step
# (float64 there, float32 here), and the noise ours drew.

CONTROL = {
    # ours: (POPGym module, POPGym's class, our state -> POPGym's)
    "StatelessCartPole": ("position_only_cartpole", "PositionOnlyCartPole"),
    "NoisyStatelessCartPole": (
        "noisy_position_only_cartpole",
        "NoisyPositionOnlyCartPole",
    ),
    "VelocityOnlyCartPole": ("velocity_only_cartpole", "VelocityOnlyCartPole"),
    "StatelessPendulum": ("position_only_pendulum", "PositionOnlyPendulum"),
    "NoisyStatelessPendulum": (
        "noisy_position_only_pendulum",
        "NoisyPositionOnlyPendulum",
    ),
}


@eqx.filter_jit
def _balancing(env, state, keys):
    """The pushes of a linear controller on CartPole's hidden state, from `state`
    (the noise does not change the dynamics)."""
    params = env.default_params

    def body(state, key):
        force = state.x + 2 * state.x_dot + 30 * state.theta + 5 * state.theta_dot
        action = (force > 0).astype(jnp.int32)
        _, state, _, _, _ = env.step_env(key, state, action, params)
        return state, action

    return jax.lax.scan(body, state, keys)[1]


def _gym_state(state):
    if hasattr(state, "x"):
        return np.array([state.x, state.x_dot, state.theta, state.theta_dot], float)
    return np.array([state.theta, state.theta_dot], float)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("family", [*CONTROL])
def test_control_matches_popgym(family, level):
    import importlib

    module_name, their_name = CONTROL[family]
    module = importlib.import_module(f"popgym.envs.{module_name}")
    env = getattr(ours, family + level)()
    params = env.default_params
    steps = params.max_steps_in_episode
    sigma = getattr(env, "noise_sigma", None)
    cartpole = "CartPole" in family
    rng = np.random.default_rng(7)
    for seed in range(3):
        reset_key, key = jax.random.split(jax.random.key(seed))
        obs0, state = env.reset_env(reset_key, params)
        keys = jax.random.split(key, steps)
        # The hidden draws: the initial state, and the noise at reset and after
        # every step (ours splits each key into the dynamics' and the noise's).
        noise = [
            jax.random.normal(jax.random.split(k)[1], (2,)) for k in (reset_key, *keys)
        ]
        theirs = getattr(module, their_name + level)()
        theirs.reset(seed=seed)
        theirs._np_random = _Draws(uniform=[_gym_state(state)], normal=noise)
        p_obs, _ = theirs.reset()
        np.testing.assert_allclose(obs0, p_obs, atol=1e-6)
        if sigma is not None:
            np.testing.assert_array_equal(theirs.noise_sigma, sigma)

        def before_step(t, now):
            theirs.state = _gym_state(now)

        if cartpole:
            # Random pushes (the pole falls), or a controller on the state that
            # keeps it up until the time limit.
            actions = rng.integers(0, 2, steps)
            if seed == 0:
                actions = _balancing(env, state, keys)
            to_popgym = int
        else:
            actions = rng.uniform(-2.5, 2.5, (steps, 1)).astype(np.float32)
            to_popgym = np.asarray
        length, terminated = _compare(
            env,
            state,
            theirs,
            actions,
            lambda obs, action=None: obs,
            keys=keys,
            to_popgym=to_popgym,
            before_step=before_step,
            atol=1e-5,
        )
        assert length == steps or (cartpole and terminated)
