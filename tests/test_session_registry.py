"""The session registry: limits, lookup, spec interning and idle reaping, with no gRPC."""

import ast
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from flare.bridge import session_registry
from flare.bridge.session_registry import SessionRegistry, TooManySessions, UnknownSession
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec


def _spec(n: int) -> EnvSpec:
    return EnvSpec(
        observations=(ArraySpec("sensor", np.dtype(np.float32), (n,)),),
        actions=(ArraySpec("action", np.dtype(np.int64), (1,), Discrete(2)),),
    )


@dataclass
class FakeSession:
    id: str
    spec: EnvSpec
    last_used: float = 0.0
    closed: bool = False
    closes: list = field(default_factory=list)

    def close(self) -> None:
        self.closes.append(self.id)


def _registry(max_sessions=3, idle_timeout_s=10.0):
    def opener(session_id, config, seed):
        if config.get("fail"):
            raise ValueError("refused")
        return FakeSession(session_id, _spec(int(config.get("n", 1))))

    return SessionRegistry(opener, max_sessions, idle_timeout_s)


def test_the_registry_imports_no_grpc():
    """Its own imports (the package ``flare.bridge`` loads gRPC for its other modules)."""
    tree = ast.parse(Path(session_registry.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and not {m for m in imported if "grpc" in m or "simulator" in m}


def test_open_past_the_limit_is_refused_and_a_failed_open_frees_its_slot():
    registry = _registry(max_sessions=2)
    with pytest.raises(ValueError, match="refused"):
        registry.open({"fail": "1"}, None)
    assert registry.num_sessions == 0
    first, _ = registry.open({}, None), registry.open({}, 1)
    with pytest.raises(TooManySessions, match="maximum of 2"):
        registry.open({}, None)
    assert registry.close(first.id) and not registry.close(first.id)
    registry.open({}, None)
    assert registry.num_sessions == 2


def test_equal_specs_are_one_object_and_are_forgotten_with_their_last_session():
    registry = _registry()
    a, b, c = (
        registry.open({"n": "2"}, None),
        registry.open({"n": "2"}, None),
        registry.open({"n": "3"}, None),
    )
    assert a.spec is b.spec and a.spec is not c.spec
    assert registry.num_specs == 2
    registry.close(c.id)
    assert registry.num_specs == 1
    registry.close(a.id)
    registry.close(b.id)
    assert registry.num_specs == 0


def test_get_many_finds_every_unknown_id_before_returning_any():
    registry = _registry()
    a = registry.open({}, None)
    assert registry.get_many([a.id]) == [a]
    with pytest.raises(UnknownSession, match="nope"):
        registry.get_many([a.id, "nope"])
    with pytest.raises(UnknownSession):
        registry.get("nope")


def test_idle_and_lost_sessions_are_reaped():
    registry = _registry(idle_timeout_s=10.0)
    idle, busy, lost = (registry.open({}, None) for _ in range(3))
    busy.last_used, lost.closed = 15.0, True
    assert sorted(registry.reap_idle(now=20.0)) == sorted([idle.id, lost.id])
    assert registry.num_sessions == 1 and registry.get(busy.id) is busy
    assert idle.closes == [idle.id]
