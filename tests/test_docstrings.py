"""Every public name of every public package has a docstring of its own, which
names each of its arguments; the examples in docstrings run.

Public: exported by a package (not starting with `_`) and defined in memrl_eqx;
for classes also their public methods, properties and classmethods defined in
memrl_eqx (a method may inherit its docstring from the method it implements).
Dataclass-made docstrings (`Name(field: type, ...)`) do not count.
"""

import importlib
import inspect
import re
import types

import pytest

import memrl_eqx

from .helpers import python_blocks, run_program


PACKAGES = [
    "memrl_eqx",
    "memrl_eqx.algorithms",
    "memrl_eqx.bench",
    "memrl_eqx.buffers",
    "memrl_eqx.cli",
    "memrl_eqx.envs",
    "memrl_eqx.envs.adapters",
    "memrl_eqx.envs.popgym",
    "memrl_eqx.loggers",
    "memrl_eqx.nn",
    "memrl_eqx.nn.heads",
]


def _ours(obj) -> bool:
    return getattr(obj, "__module__", "").startswith("memrl_eqx")


def _own_doc(obj) -> str:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    doc = (doc or "").strip()
    if isinstance(obj, type) and doc.startswith(f"{obj.__name__}("):
        return ""  # written by dataclasses, not by us
    return doc


def _members(cls: type):
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, staticmethod | classmethod):
            attr = attr.__func__
        if isinstance(attr, property):
            attr = attr.fget
        if isinstance(attr, types.FunctionType) and _ours(attr):
            yield name, attr


def _inherited_doc(cls: type, name: str, fn) -> str:
    if (fn.__doc__ or "").strip():
        return fn.__doc__
    for base in cls.__mro__[1:]:
        doc = getattr(getattr(base, name, None), "__doc__", None)
        if doc and doc.strip():
            return doc
    return ""


def public() -> list[tuple[str, object]]:
    """`(qualified name, object)` for each public class and function, once."""
    found, seen = [], set()
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if _ours(obj) and id(obj) not in seen:
                seen.add(id(obj))
                found.append((f"{package}.{name}", obj))
    return found


def _arguments(obj) -> list[str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [
        name
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _names(doc: str, argument: str) -> bool:
    return re.search(rf"`{re.escape(argument)}\b", doc) is not None


def unnamed_arguments() -> list[str]:
    """`name: [arguments]` for each public callable whose docstring misses some."""
    missing = []
    for name, obj in public():
        doc = _own_doc(obj)
        absent = [a for a in _arguments(obj) if not _names(doc, a)]
        if doc and absent:
            missing.append(f"{name}: {absent}")
    return missing


def undocumented() -> list[str]:
    """The public packages, names and methods without a docstring of their own."""
    missing = [
        p for p in PACKAGES if not (importlib.import_module(p).__doc__ or "").strip()
    ]
    for name, obj in public():
        if not _own_doc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for member, fn in _members(obj):
                if not _inherited_doc(obj, member, fn).strip():
                    missing.append(f"{name}.{member}")
    return missing


def test_every_public_name_has_a_docstring():
    missing = undocumented()
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_every_argument_is_named_in_the_docstring():
    missing = unnamed_arguments()
    assert not missing, "arguments not named (in backticks) in the docstring:\n" + (
        "\n".join(missing)
    )


def _examples() -> list[tuple[str, str]]:
    found = []
    for name, obj in public():
        blocks = python_blocks(inspect.cleandoc(_own_doc(obj)))
        found += [(f"{name}[{i}]", block) for i, block in enumerate(blocks)]
    return found


@pytest.mark.parametrize("name, example", _examples(), ids=[n for n, _ in _examples()])
def test_docstring_examples_run(name, example):
    run_program(example, name, {})


def test_the_check_sees_a_missing_docstring():
    class Undocumented:
        def method(self):
            pass

    Undocumented.__module__ = "memrl_eqx.fake"
    Undocumented.method.__module__ = "memrl_eqx.fake"
    assert not _own_doc(Undocumented)
    assert [name for name, _ in _members(Undocumented)] == ["method"]
    assert not _inherited_doc(Undocumented, "method", Undocumented.method)
    assert memrl_eqx.nn.GRUCell.__doc__.strip() == _own_doc(memrl_eqx.nn.GRUCell)

    def f(x, *args, width=1, **kwargs):
        """Doubles `x`."""

    assert _arguments(f) == ["x", "width"]
    assert _names(f.__doc__, "x") and not _names(f.__doc__, "width")
    assert not _names("`xs`", "x")
