"""Checks that networks fit an environment, made when an algorithm is built.

Every algorithm calls `check_networks` from its constructor, and the network
builders of `memrl_eqx` call `check_torso`. Both trace the modules abstractly
(`eqx.filter_eval_shape`: shapes only, nothing is compiled or run) on inputs of
the shapes training feeds them, so any module passes that works, the library's
or a user's own. Each mismatch is one `ValueError` naming the algorithm, the
network, the part (feature extractor, torso or head), the size expected and the
size given.
"""

import math
from collections.abc import Callable
from typing import Any, Literal

import distrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import numpy as np
from gymnax.environments.environment import Environment
from jaxtyping import PyTree

from ..nn import AbstractSequenceModel, FeatureExtractor, Network, Timestep
from ._rollout import first_timestep, reset_envs


Role = Literal["policy", "value", "q", "twin_q"]

_TIME = 2  # the length of the sequences the networks are traced on


def _trace(fn: Callable[..., Any], *args: Any) -> tuple[Any, Exception | None]:
    """`(fn(*args) with arrays as zeros, None)`, or `(None, error)` if tracing
    `fn` fails. NumPy zeros (a few numbers, made without JAX computing anything)
    rather than shapes, to be the inputs of the next part."""
    try:
        out = eqx.filter_eval_shape(fn, *args)
    except Exception as error:  # a user's module may fail in any way
        return None, error
    zeros = lambda x: np.zeros(x.shape, x.dtype)
    is_shape = lambda x: isinstance(x, jax.ShapeDtypeStruct)
    return jtu.tree_map(zeros, out, is_leaf=is_shape), None


def _zeros(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def _first_line(error: Exception) -> str:
    line = (str(error).strip().splitlines() or [""])[0]
    line = line if len(line) <= 200 else line[:197] + "..."
    return f"{type(error).__name__}: {line}"


def _declared_widths(module: Any) -> list[int]:
    """The input widths `module` may take: the integer `in_features` in it, its
    own or its sub-modules' (e.g. a `Sequential`'s first layer), outermost and
    first first."""
    declares = lambda x: type(getattr(x, "in_features", None)) is int
    nodes = jtu.tree_leaves(module, is_leaf=declares)
    return list(dict.fromkeys(x.in_features for x in nodes if declares(x)))


def _width_error(
    message: str,
    module: Any,
    expected: int,
    error: Exception,
    runs_at: Callable[[int], Exception | None],
    extra: int = 0,
) -> ValueError:
    """`message: expected in_features=expected, got ...`: the first width that
    `module` declares and runs at (`runs_at(width)` is None), else the error it
    fails with. `extra` is the width of inputs concatenated to the checked ones
    inside it (the actions of a Q(s, a) head), taken off declared widths."""
    widths = _declared_widths(module)
    candidates = dict.fromkeys(widths + [w - extra for w in widths if w > extra])
    candidates.pop(expected, None)
    given = next((w for w in list(candidates)[:4] if runs_at(w) is None), None)
    if given is not None:
        got = f"got `in_features={given}`"
    else:
        got = f"got {type(module).__name__}, which fails on them ({_first_line(error)})"
    return ValueError(f"{message}: expected `in_features={expected}`, {got}.")


def _run_torso(torso: AbstractSequenceModel, xs: Any) -> Any:
    return torso(torso.init_carry(), xs, jnp.zeros(xs.shape[:1], bool))[1]


def _torso_runs_at(torso: AbstractSequenceModel) -> Callable:
    return lambda width: _trace(_run_torso, torso, _zeros(_TIME, width))[1]


def check_torso(caller: str, torso: Any, *, in_features: int, features: int) -> None:
    """Raise a `ValueError` starting with `caller` unless `torso` is a sequence
    model from `(time, in_features)` to `(time, features)`."""
    if not isinstance(torso, AbstractSequenceModel):
        raise TypeError(
            f"{caller}: `torso` must be a name of `memrl_eqx.TORSOS`, a sequence "
            "model (`memrl_eqx.nn.AbstractSequenceModel`) or a function of a key "
            f"returning one; got {type(torso).__name__}."
        )
    ys, error = _trace(_run_torso, torso, _zeros(_TIME, in_features))
    if error is not None:
        message = (
            f"{caller}: the torso does not take the embedding "
            f"(`features={in_features}` wide)"
        )
        raise _width_error(
            message, torso, in_features, error, _torso_runs_at(torso)
        ) from error
    if ys.shape[1:] != (features,):
        raise ValueError(
            f"{caller}: the torso's outputs must be `features` wide, the heads' "
            f"input: expected width {features}, got outputs of shape {ys.shape[1:]} "
            "per step."
        )


def _timestep(env: Environment, env_params: PyTree[Any]) -> Timestep:
    """`_TIME` first timesteps (zeros), shaped as training feeds the networks."""
    space = env.action_space(env_params)
    dtype = jnp.int32 if hasattr(space, "n") else jnp.float32
    make = lambda: first_timestep(
        reset_envs(env, env_params, jr.key(0), _TIME)[0], tuple(space.shape), dtype
    )
    timestep, error = _trace(make)
    if error is not None:
        raise error
    return timestep


def check_networks(
    algorithm: str, env: Environment, env_params: PyTree[Any], **networks: tuple
) -> None:
    """Check that each network fits `env` and plays its role in `algorithm`.

    **Arguments:**

    - `algorithm`: the name that starts every message, e.g. `"PPO"`.
    - `env`, `env_params`: the environment (its action space discrete or a box,
      as the algorithm has checked) and its params.
    - `**networks`: for each network, its argument's name (`actor=`,
      `q_network=`...) and `(network, role)`, the role being `"policy"` (a head
      returning a distrax distribution over the actions), `"value"` (a head
      returning one value per step), `"q"` (discrete actions: a head with
      `q_values`, one value per action, and `loss`) or `"twin_q"` (as `"q"`
      with two critics on the last axis of the output; for continuous actions,
      a head called with the actions, with `value` and `loss`). An algorithm
      whose loss needs one head class gives `(network, role, head_type,
      builder)`: the head must be a `head_type`, and the message names
      `builder` (e.g. `"memrl_eqx.sac_networks"`) as where to get one.

    Checked, in order, on `(time, ...)` sequences of the environment's first
    timesteps: that it is a `Network`; that its feature extractor takes them;
    that its torso takes the extractor's outputs; that its head takes the
    torso's outputs; and that the head's output is of the role's kind and of the
    action space's size.

    **Raises:** `ValueError` at the first mismatch, naming `algorithm`, the
    network, the part, the expected and the given size.
    """
    timestep = _timestep(env, env_params)
    space = env.action_space(env_params)
    for name, (network, role, *needs) in networks.items():
        if needs:
            _check_head_type(f"{algorithm}: `{name}`", network, *needs)
        _check_network(f"{algorithm}: `{name}`", network, role, timestep, space)


def _check_head_type(name: str, network: Any, head_type: type, builder: str) -> None:
    head = getattr(network, "head", None)
    if not isinstance(network, Network) or not isinstance(head, head_type):
        raise ValueError(
            f"{name} must be a `Network` with a `heads.{head_type.__name__}` head, "
            f"e.g. from `{builder}`; got {type(network).__name__} with head "
            f"{type(head).__name__}."
        )


def _check_network(
    name: str, network: Any, role: Role, timestep: Timestep, space: Any
) -> None:
    if not isinstance(network, Network):
        raise ValueError(
            f"{name} must be a `memrl_eqx.nn.Network`; got {type(network).__name__}."
        )
    discrete = hasattr(space, "n")
    # Mismatches that tracing would not show (a one-hot encoding of too few
    # actions runs, reading some actions as none) or would show only as a
    # failure of the head (a Q(s, a) head's input is features and actions).
    num_classes = getattr(
        getattr(network.feature_extractor, "action_extractor", None),
        "num_classes",
        None,
    )
    if discrete and type(num_classes) is int and num_classes != space.n:
        raise ValueError(
            f"{name}'s feature extractor's `action_extractor` does not fit the "
            f"action space: expected `num_classes={int(space.n)}` (the "
            f"environment's {int(space.n)} actions), got `num_classes={num_classes}`."
        )
    actions = ()  # a continuous Q head is also given the actions
    if role in ("q", "twin_q") and not discrete:
        action_dim = getattr(network.head, "action_dim", None)
        if type(action_dim) is int and (action_dim,) != tuple(space.shape):
            raise ValueError(
                f"{name}'s head does not fit the action space: expected "
                f"`action_dim={space.shape[0]}` (actions of shape {space.shape}), "
                f"got `action_dim={action_dim}`."
            )
        actions = (_zeros(_TIME, *space.shape),)
    q_values = role in ("q", "twin_q") and discrete
    call = lambda head, x, actions: _summary(head, head(x, *actions), q_values)
    # One trace of the whole network; the parts are traced one by one only to
    # say which of them fails.
    whole = lambda net, timestep, actions: call(
        net.head, net.encode(net.init_carry(), timestep)[1], actions
    )
    out, error = _trace(whole, network, timestep, actions)
    if error is not None:
        _raise_for_part(name, network, timestep, space, call, actions)
        raise ValueError(
            f"{name} fails on the environment's timesteps: {_first_line(error)}"
        ) from error
    _check_output(name, network.head, role, out, space)


def _raise_for_part(
    name: str,
    network: Network,
    timestep: Timestep,
    space: Any,
    call: Callable[..., Any],
    actions: tuple,
) -> None:
    """Trace `network`'s parts one by one and raise the error of the first that
    fails on its inputs."""
    features = _check_feature_extractor(name, network.feature_extractor, timestep)
    hidden, error = _trace(_run_torso, network.torso, features)
    if error is not None:
        message = (
            f"{name}'s torso does not take its feature extractor's outputs "
            f"({features.shape[1]} wide)"
        )
        raise _width_error(
            message,
            network.torso,
            features.shape[1],
            error,
            _torso_runs_at(network.torso),
        ) from error
    head = network.head
    out, error = _trace(call, head, hidden, actions)
    if error is not None:
        message = f"{name}'s head does not take its torso's outputs"
        message += f" ({hidden.shape[1]} wide)" if hidden.ndim == 2 else ""
        runs_at = lambda width: _trace(call, head, _zeros(_TIME, width), actions)[1]
        extra = math.prod(space.shape) if actions else 0
        raise _width_error(
            message, head, hidden.shape[-1], error, runs_at, extra
        ) from error


def _check_feature_extractor(name: str, extractor: Any, timestep: Timestep) -> Any:
    """The extractor's outputs on `timestep`, else the error naming the part of
    it that does not fit."""
    part = f"{name}'s feature extractor"
    features, error = _trace(jax.vmap(extractor), timestep)
    if error is None:
        if features.ndim != 2:
            raise ValueError(
                f"{part} must return one feature vector per step, (time, features); "
                f"got outputs of shape {('time',) + features.shape[1:]}."
            )
        return features
    obs = timestep.obs
    if isinstance(extractor, FeatureExtractor) and eqx.is_array(obs):
        inner = jax.vmap(extractor.observation_extractor)
        obs_error = _trace(inner, obs)[1]
        if obs_error is not None:
            shape = obs.shape[1:]
            flat = ", flattened" if len(shape) > 1 else ""
            message = (
                f"{part}'s `observation_extractor` does not take the environment's "
                f"observations (of shape {shape}{flat})"
            )
            runs_at = lambda width: _trace(inner, _zeros(_TIME, width))[1]
            raise _width_error(
                message,
                extractor.observation_extractor,
                math.prod(shape),
                obs_error,
                runs_at,
            ) from error
    raise ValueError(
        f"{part} fails on the environment's timesteps: {_first_line(error)}"
    ) from error


class _Policy(eqx.Module):
    """What the checks read off a distribution: its class name, a sample and
    its number of categories (None if it does not say)."""

    kind: str = eqx.field(static=True)
    sample: Any
    num_categories: int | None = eqx.field(static=True)


def _summary(head: Any, out: Any, q_values: bool) -> Any:
    """`_Policy` for a distribution; else `(out, head.q_values(out))` if
    `q_values` (and the head has them), or `(out, None)`."""
    if isinstance(out, distrax.Distribution):
        num = getattr(out, "num_categories", None)
        num = num if type(num) is int else None
        return _Policy(type(out).__name__, out.sample(seed=jr.key(0)), num)
    has_q = q_values and callable(getattr(head, "q_values", None))
    return out, head.q_values(out) if has_q else None


def _describe(out: Any) -> str:
    if isinstance(out, _Policy):
        return f"a distrax `{out.kind}`"
    leaves = jtu.tree_leaves(out[0])
    shapes = [str(("time",) + x.shape[1:]).replace("'", "") for x in leaves]
    return f"outputs of shape {', '.join(shapes)}" if shapes else "no arrays"


# For each role: what it needs, and the library's heads for discrete and for
# continuous actions.
_KINDS = {
    "policy": (
        "a policy head, returning a distrax distribution",
        ("heads.Categorical", "heads.Gaussian"),
    ),
    "value": (
        "a value head, returning one value per step, of shape (time,)",
        ("heads.VNetwork", "heads.VNetwork"),
    ),
    "q": (
        "a Q head, with `q_values` (one value per action) and `loss`",
        ("heads.DiscreteQNetwork", "heads.ContinuousQNetwork"),
    ),
    "twin_q": (
        "a twin Q head, two critics on the last axis of its output",
        ("heads.TwinDiscreteQNetwork", "heads.TwinContinuousQNetwork"),
    ),
}


def _check_output(name: str, head: Any, role: Role, out: Any, space: Any) -> None:
    discrete = hasattr(space, "n")
    what, examples = _KINDS[role]
    if discrete:
        num_actions = int(space.n)
        actions_are = f"the environment's {num_actions} actions"
    else:
        action_shape = tuple(space.shape)
        actions_are = f"the environment's actions of shape {action_shape}"

    def wrong_kind() -> ValueError:
        example = f" (e.g. `{examples[not discrete]}`)"
        example += f" for {actions_are}" if role != "value" else ""
        return ValueError(
            f"{name}'s head must be {what}{example}; got `{type(head).__name__}`, "
            f"returning {_describe(out)}."
        )

    def wrong_size(expected: str, given: str) -> ValueError:
        return ValueError(
            f"{name}'s head does not fit the action space: expected {expected} "
            f"({actions_are}), got {given}."
        )

    if role == "policy":
        if not isinstance(out, _Policy):
            raise wrong_kind()
        sample = out.sample
        if discrete != bool(jnp.issubdtype(sample.dtype, jnp.integer)):
            raise wrong_kind()
        if discrete and out.num_categories not in (None, num_actions):
            raise wrong_size(
                f"`action_dim={num_actions}`", f"`action_dim={out.num_categories}`"
            )
        expected_shape = () if discrete else action_shape
        declared = getattr(head, "action_dim", None)
        if not discrete and type(declared) is int and (declared,) != action_shape:
            expected = f"`action_dim={math.prod(action_shape)}`"
            raise wrong_size(expected, f"`action_dim={declared}`")
        if sample.shape[1:] != expected_shape:
            raise wrong_size(
                f"actions of shape {expected_shape}",
                f"actions of shape {sample.shape[1:]}",
            )
        return
    if isinstance(out, _Policy) or not eqx.is_array(out[0]):
        raise wrong_kind()
    values, q = out
    if role == "value":
        if values.shape != (_TIME,):
            raise wrong_kind()
        return
    twin = role == "twin_q"
    if not discrete:  # called with the actions; its `action_dim` is checked
        methods = callable(getattr(head, "value", None)) and callable(
            getattr(head, "loss", None)
        )
        if not methods or values.shape != ((_TIME, 2) if twin else (_TIME,)):
            raise wrong_kind()
        return
    if q is None or not callable(getattr(head, "loss", None)) or q.ndim != 2:
        raise wrong_kind()
    if twin and (values.ndim != 3 or values.shape[-1] != 2):
        raise wrong_kind()
    if q.shape[1] != num_actions:
        raise wrong_size(f"`action_dim={num_actions}`", f"`action_dim={q.shape[1]}`")
