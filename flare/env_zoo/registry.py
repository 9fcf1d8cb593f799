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
import importlib.metadata
import pkgutil
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass

from flare.bridge.quoting import quoted
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
    try:
        module = importlib.import_module(f"flare.env_zoo.{name}{MODULE_SUFFIX}")
    except ModuleNotFoundError as err:
        if not err.name or err.name.split(".")[0] == "flare":
            raise
        raise ImportError(
            f"the {name} adapter needs the {err.name!r} package: {_install_hint(name)}"
        ) from err
    adapter = getattr(module, "ADAPTER", None)
    if not isinstance(adapter, Adapter) or adapter.name != name:
        raise TypeError(
            f"{module.__name__}.ADAPTER must be an Adapter named {name!r}, got {adapter!r}"
        )
    return adapter


def _install_hint(name: str) -> str:
    """How to install an adapter's packages: its extra of FLARE's, where there is one."""
    try:
        extras = importlib.metadata.metadata("flare").get_all("Provides-Extra") or []
    except importlib.metadata.PackageNotFoundError:
        extras = []
    return f"pip install 'flare[{name}]'" if name in extras else "install it"


# ----- reading a session's config strings ---------------------------------------------------
# A session's config comes from the network: whatever a client sends, the server must not
# spend unbounded memory or time on it, nor echo it back whole in an error.
MAX_INT_CHARS = 20  # longest string read as a number: int() of a huge one is a CPU bomb
MAX_ID_CHARS = 128  # longest game or level id a client may name

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def config_flag(name: str, value: str | bool) -> bool:
    """A yes/no value of a session config (config values travel as strings)."""
    if isinstance(value, bool):
        return value
    if len(value) <= MAX_INT_CHARS:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    raise ValueError(f"{name} must be true or false, got {quoted(value)}")


def config_int(name: str, value: str | int, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` of a session config or an option.

    Every number a client sends is bounded, so no config can make the server allocate a
    giant frame or stack; a string longer than 20 characters is refused before ``int()``
    reads it. The error names the key and the bounds.
    """
    if isinstance(value, str):
        if len(value) > MAX_INT_CHARS:
            raise ValueError(
                f"{name} must be an integer from {low} to {high}, "
                f"got a string of {len(value)} characters"
            )
        try:
            number = int(value)
        except ValueError:
            raise ValueError(
                f"{name} must be an integer from {low} to {high}, got {quoted(value)}"
            ) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not low <= number <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {number}")
    return number


def config_positive_int(name: str, value: str | int) -> int:
    """A whole number >= 1 of a session config or an option, with no upper bound: for a
    trusted value only (a client's config takes ``config_int`` with its limit)."""
    return config_int(name, value, 1, sys.maxsize)


def registered_id(
    key: str,
    value: str,
    allowed: Collection[str],
    *,
    default_option: str,
    allow_option: str,
    package: str | None = None,
) -> str:
    """``value`` when the server may make it for a client, else a ``ValueError`` naming it.

    ``gymnasium.make("module:Env")`` imports ``module`` first, so a client naming such an
    id would run that module's code in the server. A client may name an id registered in
    Gymnasium's registry, exactly as registered (installed packages registered those, and
    the code they run is theirs); with ``package``, only an id whose entry point is in that
    package. Any other id, and every id with a ``module:`` part, only when it is in
    ``allowed``: the server's own default (``default_option``) and ``allow_option``'s list.
    """
    if value in allowed:
        return value
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"{key} {quoted(value)} is longer than {MAX_ID_CHARS} characters")
    how = (
        f"the server's operator can allow it with {allow_option} ID (repeatable) "
        f"or serve it with {default_option} ID"
    )
    if ":" in value:
        raise ValueError(f"{key} {quoted(value)} names a module to import, not allowed: {how}")
    import gymnasium as gym  # (only the adapters that serve Gymnasium ids pay for it)

    spec = gym.registry.get(value)
    if spec is None:
        raise ValueError(
            f"{key} {quoted(value)} is not a registered Gymnasium id (with its version, "
            f"e.g. CartPole-v1), not allowed: {how}"
        )
    if package is not None and not _entry_point_in(spec.entry_point, package):
        raise ValueError(
            f"{key} {quoted(value)} is not registered by {package}, not allowed: {how}"
        )
    return value


def _entry_point_in(entry_point: object, package: str) -> bool:
    if isinstance(entry_point, str):
        module = entry_point.partition(":")[0]
    else:
        module = getattr(entry_point, "__module__", "") or ""
    return module == package or module.startswith(f"{package}.")
