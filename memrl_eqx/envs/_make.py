import dataclasses
import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from gymnax.environments.environment import Environment


_SEPARATOR = "::"
_EXAMPLE = "'gymnax::CartPole-v1' or 'popgym::RepeatPreviousEasy'"


@dataclasses.dataclass(frozen=True)
class _Namespace:
    """A family of environments. Both functions import their backend lazily, so an
    optional backend is only needed when one of its ids is used."""

    names: Callable[[], Sequence[str]]
    make: Callable[..., tuple[Environment, Any]]


def _gymnax_names() -> Sequence[str]:
    import gymnax

    return gymnax.registered_envs


def _gymnax_make(name: str, **kwargs: Any) -> tuple[Environment, Any]:
    import gymnax

    return gymnax.make(name, **kwargs)


def _popgym_names() -> Sequence[str]:
    from .popgym import _registry

    return list(_registry)


def _popgym_make(name: str, **kwargs: Any) -> tuple[Environment, Any]:
    from .popgym import _registry

    cls = _registry[name]
    accepted = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unexpected = sorted(set(kwargs) - set(accepted))
    if unexpected:
        if accepted:
            takes = f"takes the keyword arguments {', '.join(accepted)}"
        else:
            takes = "is a preset and takes no keyword arguments"
        raise ValueError(
            f"'popgym{_SEPARATOR}{name}' {takes}; got {', '.join(unexpected)}."
        )
    env = cls(**kwargs)
    return env, env.default_params


# One entry per namespace. A new backend (brax, craftax, ...) is one more entry
# whose functions import it on first use.
_NAMESPACES: dict[str, _Namespace] = {
    "gymnax": _Namespace(names=_gymnax_names, make=_gymnax_make),
    "popgym": _Namespace(names=_popgym_names, make=_popgym_make),
}


def _get_namespace(namespace: str, env_id: str | None = None) -> _Namespace:
    try:
        return _NAMESPACES[namespace]
    except KeyError:
        where = "" if env_id is None else f" in {env_id!r}"
        raise ValueError(
            f"Unknown environment namespace {namespace!r}{where}. Valid namespaces "
            f"are: {', '.join(_NAMESPACES)}."
        ) from None


def make(env_id: str, **kwargs: Any) -> tuple[Environment, Any]:
    """Builds an environment from its id.

    **Arguments:**

    - `env_id`: `"namespace::name"`, e.g. `"gymnax::CartPole-v1"` (any id in
        `gymnax.registered_envs`) or `"popgym::RepeatPreviousEasy"` (see
        [`memrl_eqx.envs.popgym`][]). `list_envs()` lists them all.
    - `**kwargs`: passed to the environment's constructor, e.g.
        `make("popgym::RepeatPrevious", k=2, num_decks=1)`.

    **Returns:**

    `(env, env_params)`: a gymnax `Environment` and its default params.

    **Raises:**

    `ValueError` at once if the id is malformed, its namespace or name is unknown
    (the message lists the namespaces, or the names closest to the one given), or
    a `popgym` task is given keyword arguments it does not take.
    """
    namespace, separator, name = env_id.partition(_SEPARATOR)
    if not separator:
        raise ValueError(
            f"Environment id {env_id!r} has no namespace. Expected "
            f"'namespace{_SEPARATOR}name', e.g. {_EXAMPLE}; valid namespaces are: "
            f"{', '.join(_NAMESPACES)}."
        )
    entry = _get_namespace(namespace, env_id)
    names = list(entry.names())
    if name not in names:
        # Match case-insensitively, then report the names as spelled.
        by_lower = {n.lower(): n for n in names}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=5)
        if close:
            hint = "Did you mean " + ", ".join(
                repr(f"{namespace}{_SEPARATOR}{by_lower[c]}") for c in close
            )
            hint += "?"
        else:
            hint = "No id is close to it."
        raise ValueError(
            f"Unknown environment {name!r} in namespace {namespace!r}, which has "
            f"{len(names)} ids. {hint} memrl_eqx.envs.list_envs({namespace!r}) "
            "lists them all."
        )
    return entry.make(name, **kwargs)


def list_envs(namespace: str | None = None) -> list[str]:
    """The ids `make` accepts, `"namespace::name"`, for one namespace or all.

    Raises `ValueError` for an unknown namespace.
    """
    namespaces = list(_NAMESPACES) if namespace is None else [namespace]
    return [
        f"{ns}{_SEPARATOR}{name}"
        for ns in namespaces
        for name in _get_namespace(ns).names()
    ]
