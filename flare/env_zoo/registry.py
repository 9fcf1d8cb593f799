"""Bundled simulator adapters find themselves: ``flare serve NAME`` needs no list of them.

An adapter named NAME is the module ``flare/env_zoo/NAME_env.py`` with a module-level
``ADAPTER``: its name, its command-line options and how it builds the server's env
factory from them. Adding an adapter touches that module and its tests only; the command
line shows its options under ``flare serve NAME --help`` and refuses any other adapter's.
Modules are imported only when asked for, so serving Gym never loads MiniGrid.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from flare.framework.env import Env

MODULE_SUFFIX = "_env"
EnvFactory = Callable[..., Env]


@dataclass(frozen=True)
class ServedEnv:
    """What an adapter serves: the factory each session's Env comes from (called with the
    session's config strings and seed), and a few words for the server's first line."""

    factory: EnvFactory
    description: str


@dataclass(frozen=True)
class Adapter:
    """A bundled simulator adapter, as ``flare serve NAME`` sees it.

    Attributes:
        name: the NAME of ``flare serve NAME``; its module is ``NAME_env.py``.
        summary: one line for the help.
        add_options: adds the adapter's own options to its argument group.
        build: the env factory from the parsed options; a bad option is a ``ValueError``
            (one clear line on the command line), raised before the server starts.
    """

    name: str
    summary: str
    add_options: Callable[[argparse._ArgumentGroup], None]
    build: Callable[[argparse.Namespace], ServedEnv]


def _env_zoo_modules() -> list[str]:
    from flare import env_zoo

    return sorted(m.name for m in pkgutil.iter_modules(env_zoo.__path__))


def adapter_names() -> list[str]:
    """The names of the bundled adapters, from their modules' names (nothing imported)."""
    return [
        module[: -len(MODULE_SUFFIX)]
        for module in _env_zoo_modules()
        if module.endswith(MODULE_SUFFIX)
    ]


def find_adapter(name: str) -> Adapter | None:
    """The adapter NAME, or None when there is no module ``NAME_env.py`` (which, when it
    exists, must declare it)."""
    if name not in adapter_names():
        return None
    module = importlib.import_module(f"flare.env_zoo.{name}{MODULE_SUFFIX}")
    adapter = getattr(module, "ADAPTER", None)
    if not isinstance(adapter, Adapter) or adapter.name != name:
        raise TypeError(
            f"{module.__name__}.ADAPTER must be an Adapter named {name!r}, got {adapter!r}"
        )
    return adapter


# ----- reading a session's config strings ---------------------------------------------------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def config_flag(name: str, value: str | bool) -> bool:
    """A yes/no value of a session config (config values travel as strings)."""
    if isinstance(value, bool):
        return value
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def config_positive_int(name: str, value: str | int) -> int:
    """A whole number >= 1 of a session config or an option."""
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {number}")
    return number
