import dataclasses
import difflib
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from gymnax.environments.environment import Environment


_SEPARATOR = "::"
_EXAMPLE = "'gymnax::CartPole-v1' or 'popgym::RepeatPreviousEasy'"


@dataclasses.dataclass(frozen=True)
class _Namespace:
    """A family of environments. `make(name, **kwargs)` builds one; `names()`
    lists the names it knows, or is `None` where the backend cannot list them
    (its own error then names a bad id). Both import the backend lazily: an
    optional backend is needed only when one of its ids is used, and where its
    package `module` is missing, `make` says which extra installs it.
    `aliases` maps another library's ids to this library's own, `make` builds
    the one an id maps to, and any other id is an error naming the ids there
    are."""

    make: Callable[..., Any]
    names: Callable[[], Sequence[str]] | None = None
    module: str | None = None
    extra: str | None = None
    aliases: dict[str, str] | None = None


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


# The POPGym ports of popjaxrl (the seed's `popjaxrl::`) and popjym (the Flax
# original's `popjym::`) register the same 40 ids: 13 POPGym tasks in Easy, Medium
# and Hard, which are ours under these names, and NoisyStatelessMetaCartPole,
# which has no counterpart here.
_POPGYM_PORT_TASKS = {
    **{
        task: task
        for task in (
            "Autoencode",
            "Battleship",
            "Concentration",
            "CountRecall",
            "HigherLower",
            "NoisyStatelessCartPole",
            "NoisyStatelessPendulum",
            "RepeatFirst",
            "RepeatPrevious",
            "StatelessCartPole",
            "StatelessPendulum",
        )
    },
    "Minesweeper": "MineSweeper",
    "MultiArmedBandit": "MultiarmedBandit",
}
POPGYM_PORT_ALIASES = {
    f"{theirs}{level}": f"{ours}{level}"
    for theirs, ours in _POPGYM_PORT_TASKS.items()
    for level in ("Easy", "Medium", "Hard")
}
"""`popjaxrl::` and `popjym::` ids and the `popgym::` tasks they resolve to."""


def _adapter(module: str, make: str, names: str | None = None) -> tuple:
    """`make` and `names` from `memrl_eqx.envs.adapters.<module>`, imported on
    first use; `make` returns the adapter and its default params."""

    def make_fn(name: str, **kwargs: Any) -> tuple[Environment, Any]:
        adapters = importlib.import_module(f".adapters.{module}", __package__)
        env = getattr(adapters, make)(name, **kwargs)
        return env, env.default_params

    def names_fn() -> Sequence[str]:
        adapters = importlib.import_module(f".adapters.{module}", __package__)
        return getattr(adapters, names)()

    return make_fn, None if names is None else names_fn


def _backend(
    module: str, extra: str, adapter: str, make: str, names: str | None = None
) -> _Namespace:
    make_fn, names_fn = _adapter(adapter, make, names)
    return _Namespace(make=make_fn, names=names_fn, module=module, extra=extra)


# One entry per namespace: the backend package, the extra that installs it, and
# the adapter module's `make_*` and `*_names` functions.
_NAMESPACES: dict[str, _Namespace] = {
    "gymnax": _Namespace(make=_gymnax_make, names=_gymnax_names),
    "popgym": _Namespace(make=_popgym_make, names=_popgym_names),
    "popjaxrl": _Namespace(make=_popgym_make, aliases=POPGYM_PORT_ALIASES),
    "popjym": _Namespace(make=_popgym_make, aliases=POPGYM_PORT_ALIASES),
    "brax": _backend("brax", "brax", "_brax", "make_brax", "brax_names"),
    "mujoco": _backend(
        "mujoco_playground", "mujoco", "_brax", "make_mujoco", "mujoco_names"
    ),
    "craftax": _backend(
        "craftax", "craftax", "_gymnax_like", "make_craftax", "craftax_names"
    ),
    "navix": _backend("navix", "navix", "_navix", "make_navix", "navix_names"),
    "gxm": _backend("gxm", "gxm", "_gxm", "make_gxm"),
    "popgym_arcade": _backend(
        "popgym_arcade",
        "popgym_arcade",
        "_gymnax_like",
        "make_popgym_arcade",
        "popgym_arcade_names",
    ),
    "xminigrid": _backend(
        "xminigrid", "xminigrid", "_xminigrid", "make_xminigrid", "xminigrid_names"
    ),
    "jaxmarl": _backend(
        "jaxmarl", "jaxmarl", "_jaxmarl", "make_jaxmarl", "jaxmarl_names"
    ),
}


def _check_installed(namespace: str, entry: _Namespace) -> None:
    if entry.module is not None and importlib.util.find_spec(entry.module) is None:
        raise ModuleNotFoundError(
            f"The {namespace!r} environments need the package {entry.module!r}, "
            f"which is not installed: pip install 'memrl_eqx[{entry.extra}]'."
        )


def _valid_namespaces() -> str:
    """The namespaces, for error messages: the backends', then the aliases."""
    own = [ns for ns, entry in _NAMESPACES.items() if entry.aliases is None]
    aliases = [ns for ns, entry in _NAMESPACES.items() if entry.aliases is not None]
    return (
        f"{', '.join(own)}. {' and '.join(aliases)} take those POPGym ports' ids "
        "for popgym's tasks"
    )


def _get_namespace(namespace: str, env_id: str | None = None) -> _Namespace:
    try:
        return _NAMESPACES[namespace]
    except KeyError:
        where = "" if env_id is None else f" in {env_id!r}"
        raise ValueError(
            f"Unknown environment namespace {namespace!r}{where}. Valid namespaces "
            f"are: {_valid_namespaces()}."
        ) from None


def make(env_id: str, **kwargs: Any) -> tuple[Environment, Any]:
    """Builds an environment from its id.

    **Arguments:**

    - `env_id`: `"namespace::name"`, e.g. `"gymnax::CartPole-v1"` (any id in
        `gymnax.registered_envs`), `"popgym::RepeatPreviousEasy"` (see
        [`memrl_eqx.envs.popgym`][]), or an id of an optional backend:
        `brax::`, `mujoco::` (MuJoCo Playground), `craftax::`, `navix::`, `gxm::`
        (gxm's own `"Library/Name"` ids), `popgym_arcade::`, `xminigrid::`,
        `jaxmarl::` (multi-agent: every quantity gets a leading agent axis).
        `popjaxrl::` and `popjym::` (the ids of those POPGym ports, e.g.
        `"popjym::MinesweeperEasy"`) build the same task of `popgym::`.
        Each backend is an extra, `pip install 'memrl_eqx[brax]'` and so on.
        `list_envs()` lists the ids of the installed backends.
    - `**kwargs`: passed to the environment's constructor, e.g.
        `make("popgym::RepeatPrevious", k=2, num_decks=1)`.

    **Returns:**

    `(env, env_params)`: a gymnax `Environment` (for a backend, an adapter from
    [`memrl_eqx.envs.adapters`][]) and its default params. Every environment
    auto-resets, keeps `terminated` and `truncated` apart, and gives
    `info["final_observation"]`.

    **Raises:**

    - `ValueError` at once if the id is malformed, its namespace or name is unknown
        (the message lists the namespaces, or the names closest to the one
        given), or a `popgym` task is given keyword arguments it does not take.
    - `ModuleNotFoundError` if the namespace's backend is not installed; the
        message names the extra that installs it.

    **Example:**

    ```python
    import jax
    from memrl_eqx.envs import make

    env, params = make("popgym::RepeatPrevious", k=2, num_decks=1)
    obs, state = env.reset(jax.random.key(0), params)
    action = env.action_space(params).sample(jax.random.key(1))
    obs, state, reward, terminated, truncated, info = env.step(
        jax.random.key(2), state, action, params
    )
    assert obs.shape == env.observation_space(params).shape
    assert info["final_observation"].shape == obs.shape
    ```
    """
    namespace, separator, name = env_id.partition(_SEPARATOR)
    if not separator:
        raise ValueError(
            f"Environment id {env_id!r} has no namespace. Expected "
            f"'namespace{_SEPARATOR}name', e.g. {_EXAMPLE}; valid namespaces are: "
            f"{_valid_namespaces()}."
        )
    entry = _get_namespace(namespace, env_id)
    _check_installed(namespace, entry)
    if entry.aliases is not None:
        if name not in entry.aliases:
            raise ValueError(
                f"{env_id!r} has no counterpart in memrl_eqx: {namespace}{_SEPARATOR} "
                "ids resolve to the native POPGym tasks, and the ids with one are "
                f"{', '.join(entry.aliases)} (or use 'popgym{_SEPARATOR}<task>' "
                "directly; memrl_eqx.envs.list_envs('popgym') lists them)."
            )
        return entry.make(entry.aliases[name], **kwargs)
    names = None if entry.names is None else list(entry.names())
    if names is not None and name not in names:
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

    **Arguments:** `namespace`, e.g. `"gymnax"` or `"popgym"`; by default every
    namespace whose backend is installed and can list its environments (`gxm`
    cannot), less `popjaxrl` and `popjym`, whose ids are other names of
    `popgym`'s.

    **Returns:** the ids, e.g. `"popgym::RepeatPreviousEasy"`.

    **Raises:** `ValueError` for an unknown namespace, or one that cannot list
    its environments; `ModuleNotFoundError` if the namespace's backend is not
    installed.
    """
    if namespace is None:
        namespaces = [
            ns
            for ns, entry in _NAMESPACES.items()
            if entry.aliases is None
            and entry.names is not None
            and (entry.module is None or importlib.util.find_spec(entry.module))
        ]
    else:
        entry = _get_namespace(namespace)
        _check_installed(namespace, entry)
        if entry.names is None and entry.aliases is None:
            raise ValueError(
                f"The {namespace!r} backend cannot list its environments; see its "
                "documentation for the ids it accepts."
            )
        namespaces = [namespace]
    return [
        f"{ns}{_SEPARATOR}{name}"
        for ns in namespaces
        for name in (
            _NAMESPACES[ns].aliases
            if _NAMESPACES[ns].aliases is not None
            else _NAMESPACES[ns].names()
        )
    ]
