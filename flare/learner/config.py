"""A run described by a TOML file: what ``flare train RUN.toml`` reads.

The file is checked here, whole, before anything is built: an unknown key, a value of
the wrong type or out of range is one ``ConfigError`` naming it by its dotted path
(``agents.count``). What the zoo's constructors accept (a model's or an algorithm's own
options) is checked when ``flare.learner.build`` builds them, still before any process
starts. See docs/learner.md for every key.
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A run config that cannot run; the message names the key."""


@dataclass(frozen=True)
class Component:
    """A zoo class by name (``type``) and the options its constructor takes."""

    type: str
    options: dict[str, Any]


@dataclass(frozen=True)
class EnvConfig:
    """Where the agents' environments come from: exactly one of ``adapter`` (a bundled
    adapter in this process, or served locally with ``serve``), ``address`` /
    ``addresses`` / ``farm`` (running simulators: a farm's addresses, or its farm file),
    ``simulator`` (a bundled standalone simulator started for the run), ``command`` (any
    simulator command that prints ``listening on HOST:PORT``) or ``factory``
    (``module:callable`` returning a flare Env). A simulator the run starts itself can be
    started ``servers`` times, a local farm. Every agent's env is a client of the whole
    farm: sessions spread by load, and move to a live server when theirs dies."""

    adapter: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    serve: bool = False
    address: str | None = None
    addresses: list[str] = field(default_factory=list)
    farm: str | None = None
    simulator: str | None = None
    command: list[str] = field(default_factory=list)
    factory: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    tls_root_cert: str | None = None
    token_file: str | None = None
    insecure: bool = False
    servers: int = 1
    batch: bool = True
    max_server_failures: int = 5

    @property
    def source(self) -> str:
        """The one key that says where the environments come from."""
        given = [k for k in _ENV_SOURCES if getattr(self, k)]
        return given[0]


_ENV_SOURCES = ("adapter", "address", "addresses", "farm", "simulator", "command", "factory")


@dataclass(frozen=True)
class AgentsConfig:
    """How many agents play, and how (Act agents are of the same kind and options)."""

    games: int = 0  # each agent's; required when count >= 1
    count: int = 1
    per_process: int = 1
    kind: str = "simple"
    reward_shaping: str = "none"
    reward_scale: float = 1.0
    actrep: int = 1
    start_method: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActConfig:
    """Simulators that drive their own loop and play through the Learner service's Act
    stream: how many at once, and how many games they play in all (0: as long as the
    run goes on; with no agents of the run's own, until it is stopped or reaches its
    target)."""

    streams: int = 0
    games: int = 0
    open_wait_s: float = 10.0


@dataclass(frozen=True)
class CTConfig:
    """One ComputationTask: its model, algorithm and agent helper."""

    model: Component
    algorithm: Component
    helper: Component
    batch_wait_s: float = 0.01
    learn_beside_acting: bool = False


@dataclass(frozen=True)
class StopConfig:
    """Stop early once the last ``window`` games reach a mean return or a success rate."""

    mean_return: float | None = None
    success_rate: float | None = None
    window: int = 100


@dataclass(frozen=True)
class LogConfig:
    """Progress, TensorBoard and checkpoints."""

    print_interval_s: float = 10.0
    progress: str = "auto"
    tensorboard: bool = True
    checkpoint_every_games: int = 0
    checkpoint_every_s: float = 600.0
    keep_checkpoints: int = 3
    save_replay: bool = True
    checkpoint_timeout_s: float = 60.0


@dataclass(frozen=True)
class LearnerConfig:
    """The Learner service this run serves."""

    address: str = "127.0.0.1:0"
    serve: bool = True
    progress_interval_s: float = 10.0
    tls_cert: str | None = None
    tls_key: str | None = None
    token_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class RunConfig:
    """A whole run. ``cts`` keep the file's order: the first is the main task."""

    name: str
    env: EnvConfig
    agents: AgentsConfig
    cts: dict[str, CTConfig]
    seed: int = 0
    torch_threads: int = 1
    stop: StopConfig = field(default_factory=StopConfig)
    log: LogConfig = field(default_factory=LogConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    act: ActConfig = field(default_factory=ActConfig)


PROGRESS_MODES = ("auto", "rich", "plain", "off")
AGENT_KINDS = ("simple", "memory", "reward_prediction")
REWARD_SHAPINGS = ("none", "sign", "clip", "tenth", "hundredth")


def load_config(path: str | Path) -> tuple[RunConfig, str]:
    """The config in ``path`` and its text (kept in the run directory as run)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read the run config {path}: {err.strerror}") from None
    return parse_config(text, default_name=path.stem), text


def parse_config(text: str, default_name: str = "run") -> RunConfig:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"the run config is not valid TOML: {err}") from None
    table.setdefault("name", default_name)
    return _run_config(table)


def _run_config(table: dict[str, Any]) -> RunConfig:
    cts = _require(table, "cts", dict, "")
    if not cts:
        raise ConfigError("cts: a run needs at least one [cts.NAME] table")
    parsed_cts = {name: _ct_config(name, ct) for name, ct in cts.items()}
    rest = {k: v for k, v in table.items() if k != "cts"}
    nested = {
        "env": EnvConfig,
        "agents": AgentsConfig,
        "stop": StopConfig,
        "log": LogConfig,
        "learner": LearnerConfig,
        "act": ActConfig,
    }
    values: dict[str, Any] = {"cts": parsed_cts}
    for key, cls in nested.items():
        if key in rest:
            values[key] = _dataclass_from(cls, _require(rest, key, dict, ""), key)
    plain = {k: v for k, v in rest.items() if k not in nested}
    config = _dataclass_from(RunConfig, {**plain, **values}, "", nested_ok=set(values))
    _check(config)
    return config


def _ct_config(name: str, table: Any) -> CTConfig:
    where = f"cts.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {_kind(table)}")
    components = {}
    for part in ("model", "algorithm", "helper"):
        components[part] = _component(_require(table, part, dict, where), f"{where}.{part}")
    rest = {k: v for k, v in table.items() if k not in components}
    return _dataclass_from(CTConfig, {**rest, **components}, where, nested_ok=set(components))


def _component(table: dict[str, Any], where: str) -> Component:
    kind = _require(table, "type", str, where)
    return Component(kind, {k: v for k, v in table.items() if k != "type"})


def _check(config: RunConfig) -> None:
    """The rules that span keys, and the ranges of numbers."""
    env, agents, stop, log = config.env, config.agents, config.stop, config.log
    given = [k for k in _ENV_SOURCES if getattr(env, k)]
    if len(given) != 1:
        raise ConfigError(
            f"env: give exactly one of {', '.join(_ENV_SOURCES)}"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if env.serve and not env.adapter:
        raise ConfigError("env.serve: only an env.adapter can be served for the run")
    if env.options and not (env.adapter or env.simulator):
        raise ConfigError("env.options: only for an env.adapter or env.simulator")
    _at_least("env.servers", env.servers, 1)
    _at_least("env.max_server_failures", env.max_server_failures, 0)
    if env.servers > 1 and not (env.serve or env.simulator or env.command):
        raise ConfigError("env.servers: only for a simulator the run starts itself "
                          "(env.serve, env.simulator or env.command)")  # fmt: skip
    if env.kwargs and not env.factory:
        raise ConfigError("env.kwargs: only for an env.factory (a session takes env.config)")
    if env.factory and ":" not in env.factory:
        raise ConfigError(f"env.factory must be MODULE:CALLABLE, got {env.factory!r}")
    act = config.act
    _at_least("act.streams", act.streams, 0)
    _at_least("act.games", act.games, 0)
    if act.open_wait_s <= 0:
        raise ConfigError(f"act.open_wait_s must be > 0, got {act.open_wait_s}")
    if act.games and not act.streams:
        raise ConfigError("act.games: the run accepts no Act streams (set act.streams)")
    _at_least("agents.count", agents.count, 0 if act.streams else 1)
    if agents.count:
        _at_least("agents.games", agents.games, 1)
    _at_least("agents.per_process", agents.per_process, 1)
    _at_least("agents.actrep", agents.actrep, 1)
    _one_of("agents.kind", agents.kind, AGENT_KINDS, allow_import=True)
    _one_of("agents.reward_shaping", agents.reward_shaping, REWARD_SHAPINGS)
    _finite("agents.reward_scale", agents.reward_scale)
    _one_of("agents.start_method", agents.start_method, ("auto", "fork", "forkserver"))
    _at_least("torch_threads", config.torch_threads, 1)
    _at_least("stop.window", stop.window, 1)
    if stop.success_rate is not None and not 0 <= stop.success_rate <= 1:
        raise ConfigError(f"stop.success_rate must be in [0, 1], got {stop.success_rate}")
    if stop.mean_return is not None:
        _finite("stop.mean_return", stop.mean_return)
    _at_least("log.print_interval_s", log.print_interval_s, 0)
    _one_of("log.progress", log.progress, PROGRESS_MODES)
    _at_least("log.checkpoint_every_games", log.checkpoint_every_games, 0)
    _at_least("log.checkpoint_every_s", log.checkpoint_every_s, 0)
    _at_least("log.keep_checkpoints", log.keep_checkpoints, 1)
    if log.checkpoint_timeout_s <= 0:
        raise ConfigError(f"log.checkpoint_timeout_s must be > 0, got {log.checkpoint_timeout_s}")
    if act.streams and not config.learner.serve:
        raise ConfigError("act.streams: Act streams come through the Learner service, and "
                          "learner.serve is false")  # fmt: skip
    if config.learner.progress_interval_s <= 0:
        raise ConfigError(
            f"learner.progress_interval_s must be > 0, got {config.learner.progress_interval_s}"
        )
    if bool(config.learner.tls_cert) != bool(config.learner.tls_key):
        raise ConfigError("learner.tls_cert and learner.tls_key go together")
    for name, ct in config.cts.items():
        _at_least(f"cts.{name}.batch_wait_s", ct.batch_wait_s, 0)


# ----- reading tables into dataclasses ------------------------------------------------------
def _dataclass_from(
    cls: type[T], table: dict[str, Any], where: str, nested_ok: set[str] | None = None
) -> T:
    """``cls(**table)``, each value checked against the field's type; an unknown or a
    missing key is a ``ConfigError`` naming it."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"{_join(where, unknown[0])}: unknown key; "
            f"{where or 'the top level'} takes {', '.join(sorted(known))}"
        )
    values = {}
    for name, spec in known.items():
        key = _join(where, name)
        if name not in table:
            if spec.default is MISSING and spec.default_factory is MISSING:
                raise ConfigError(f"{key}: required")
            continue
        value = table[name]
        values[name] = value if name in (nested_ok or ()) else _typed(value, hints[name], key)
    return cls(**values)


def _typed(value: Any, hint: Any, key: str) -> Any:
    """``value`` if it has the type ``hint`` (ints stand for floats), else a ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _typed(value, options[0], key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {_kind(value)}")
        return [_typed(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {_kind(value)}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got a boolean")
    if not isinstance(value, hint):
        raise ConfigError(f"{key} must be {_article(hint)}, got {_kind(value)}")
    return value


def _require(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    path = _join(where, key)
    if key not in table:
        raise ConfigError(f"{path}: required")
    value = table[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{path} must be {_article(kind)}, got {_kind(value)}")
    return value


def _at_least(key: str, value: float, low: float) -> None:
    if not value >= low:
        raise ConfigError(f"{key} must be >= {low}, got {value}")


def _finite(key: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value}")


def _one_of(key: str, value: str, choices: tuple[str, ...], allow_import: bool = False) -> None:
    if value in choices or (allow_import and ":" in value):
        return
    extra = ", or MODULE:CLASS" if allow_import else ""
    raise ConfigError(f"{key} must be one of {', '.join(choices)}{extra}; got {value!r}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _article(kind: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names[dict] = "a table"
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{value!r} ({type(value).__name__})"
