"""The agents' environments, from a run config's ``[env]`` table.

Whatever the source, the result is one ``EnvSource``: the Env class (or factory) each
agent builds in its own process and the keyword arguments agent ``i`` passes it (its
seed is ``1000 * seed + i``, as every FLARE experiment seeds). Simulators the run starts
itself (``serve``, ``simulator``, ``command``) live as long as the ``with`` block.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from flare.framework.env import Env
from flare.learner.config import ConfigError, EnvConfig

STANDALONE_SIMULATORS = ("gridworld",)


@dataclass(frozen=True)
class EnvSource:
    """How each agent gets its env: ``env_class(**kwargs_for(i))`` in its process."""

    env_class: Callable[..., Env]
    kwargs: dict[str, Any] = field(default_factory=dict)
    addresses: tuple[str, ...] = ()  # the farm every agent's env is a client of
    seed: int = 0
    farm_file: str | None = None  # (given: the envs follow it, e.g. servers Ray restarts)

    def kwargs_for(self, agent: int) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        if _takes_seed(self.env_class):
            kwargs["seed"] = 1000 * self.seed + agent
        if self.farm_file is not None:
            kwargs["address"] = self.farm_file
        elif self.addresses:
            kwargs["address"] = (
                self.addresses[0] if len(self.addresses) == 1 else list(self.addresses)
            )
        return kwargs

    def probe(self) -> Env:
        """Agent 0's env, built here to read its spec (close it after)."""
        return self.env_class(**self.kwargs_for(0))


def _takes_seed(factory: Callable[..., Env]) -> bool:
    """Whether ``factory`` takes a ``seed`` (a user's own may not: it is then not passed)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "seed" or p.kind is p.VAR_KEYWORD for p in parameters)


def option_argv(options: dict[str, Any], where: str) -> list[str]:
    """``{game = "Pong", image = true, allow_game = ["a", "b"]}`` as command-line flags:
    ``--game Pong --image --allow-game a --allow-game b``."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool):
                if item:
                    argv.append(flag)
            elif isinstance(item, str | int | float):
                argv += [flag, str(item)]
            else:
                raise ConfigError(f"{where}.{key} must be a string, number or boolean")
    return argv


class _OptionParser(argparse.ArgumentParser):
    """An adapter's options read from a config: an error names the table, never exits."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message.replace('--', '').replace('-', '_')}")


def _adapter_factory(name: str, options: dict[str, Any]) -> Callable[..., Env]:
    from flare.env_zoo.registry import adapter_names, find_adapter

    adapter = find_adapter(name)
    if adapter is None:
        raise ConfigError(f"env.adapter: no adapter {name!r}; the bundled ones are "
                          f"{', '.join(adapter_names())}")  # fmt: skip
    parser = _OptionParser(prog="env.options", add_help=False)
    adapter.add_options(parser.add_argument_group(name))
    args = parser.parse_args(option_argv(options, "env.options"))
    try:
        return adapter.build(args).factory
    except ValueError as err:
        raise ConfigError(f"env.options: {err}") from None


def _session_config(config: dict[str, Any]) -> dict[str, Any]:
    for key, value in config.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"env.config.{key} must be a string, number or boolean")
    return dict(config)


@contextmanager
def open_env_source(config: EnvConfig, seed: int, base_dir: Path) -> Iterator[EnvSource]:
    """The env source ``config`` names; simulators it starts stop when the block ends."""
    with ExitStack() as stack:
        source = config.source
        session = _session_config(config.config)
        if source == "adapter" and not config.serve:
            factory = _adapter_factory(config.adapter or "", config.options)
            yield EnvSource(factory, session, seed=seed)
            return
        if source == "factory":
            yield EnvSource(_user_factory(config.factory or ""), dict(config.kwargs), seed=seed)
            return
        farm_file = None
        if source in ("address", "addresses"):
            addresses = [config.address] if config.address else list(config.addresses)
        elif source == "farm":
            farm_file = str((base_dir / (config.farm or "")).resolve())
            addresses = list(_farm_file(base_dir, config.farm or ""))
        else:
            command = _launch_command(config)
            addresses = [
                stack.enter_context(_started(command, base_dir)) for _ in range(config.servers)
            ]
        yield EnvSource(_remote_env_class(), {**_remote_options(config), **session},
                        tuple(addresses), seed, farm_file)  # fmt: skip


def _farm_file(base_dir: Path, name: str) -> tuple[str, ...]:
    from flare.bridge.farm import read_farm_file

    path = base_dir / name
    try:
        return read_farm_file(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"env.farm: {err}") from None


def _user_factory(target: str) -> Callable[..., Env]:
    from flare.bridge.factories import load_factory

    try:
        return load_factory(target)
    except (ImportError, ValueError) as err:
        raise ConfigError(f"env.factory: {err}") from None


def _remote_env_class() -> Callable[..., Env]:
    from flare.bridge import RemoteEnv

    return RemoteEnv


def _remote_options(config: EnvConfig) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if not config.batch:
        options["batch"] = False
    options["max_server_failures"] = config.max_server_failures
    if config.tls_root_cert:
        options["tls_root_cert"] = config.tls_root_cert
    if config.token_file:
        from flare.bridge.security import read_token_file

        options["token"] = read_token_file(Path(config.token_file))
    if config.insecure:
        options["insecure"] = True
    return options


def _launch_command(config: EnvConfig) -> list[str]:
    from flare.bridge.launch import flare_command, gridworld_command

    if config.serve:
        if config.adapter is not None:
            _adapter_factory(config.adapter, config.options)  # (a bad option fails here)
        return [
            *flare_command(), "serve", config.adapter or "", "--address", "127.0.0.1:0",
            *option_argv(config.options, "env.options"),
        ]  # fmt: skip
    if config.simulator is not None:
        if config.simulator not in STANDALONE_SIMULATORS:
            raise ConfigError(
                f"env.simulator: no bundled simulator {config.simulator!r}; there is "
                f"{', '.join(STANDALONE_SIMULATORS)}"
            )
        return [*gridworld_command(), *option_argv(config.options, "env.options")]
    return list(config.command)


@contextmanager
def _started(command: Sequence[str], base_dir: Path) -> Iterator[str]:
    from flare.bridge.launch import simulator_process

    if not command or shutil.which(command[0], path=None) is None:
        if not command or not (base_dir / command[0]).is_file():
            raise ConfigError(f"env: cannot start the simulator: no program {command[:1]}")
    with simulator_process(command, cwd=base_dir) as address:
        yield address
