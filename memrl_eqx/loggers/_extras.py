"""Optional dependencies of the loggers, imported when a logger is built."""

import importlib
from types import ModuleType


def import_extra(module: str, *, extra: str, user: str) -> ModuleType:
    """Imports `module` for `user` (a class name), or raises a
    `ModuleNotFoundError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        package = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != package:
            raise  # the package is installed but one of its own imports failed
        raise ModuleNotFoundError(
            f"{user} needs the package {package!r}, which is not installed: "
            f"pip install 'memrl_eqx[{extra}]'.",
            name=package,
        ) from error
