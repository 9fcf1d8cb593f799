"""Array specs: one named array's dtype, per-instance shape and meaning.

One class serves both sides. A Model declares what it reads and writes as
``[(name, props), ...]`` where ``props`` holds a ``shape`` (per instance, no batch
dimension) and an optional ``dtype`` (default float32); ``parse_specs`` turns that into
``ArraySpec``s. An Env's ``EnvSpec`` (``flare.framework.env_spec``) lists ``ArraySpec``s
too, with a ``kind`` for actions and language: what the wire spec carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SpecList = Sequence[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Discrete:
    """One of ``num_values`` integers 0 .. num_values - 1."""

    num_values: int


@dataclass(frozen=True)
class Continuous:
    """Element-wise bounds (flattened; may be infinite)."""

    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class Language:
    """Token ids from a vocabulary of ``vocabulary_size``."""

    vocabulary_size: int


Kind = Discrete | Continuous | Language | None


@dataclass(frozen=True)
class ArraySpec:
    """One named observation, action, state or reward: dtype, per-instance shape, meaning."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    kind: Kind = None

    @classmethod
    def from_props(cls, name: str, props: dict[str, Any]) -> ArraySpec:
        """A Model's ``(name, {"shape": ..., "dtype": ...})`` declaration, checked."""
        if not isinstance(props, dict) or "shape" not in props:
            raise ValueError(f"spec {name!r} must be a dict with a 'shape' key, got {props!r}")
        shape = tuple(int(d) for d in props["shape"])
        if any(d <= 0 for d in shape):
            raise ValueError(f"spec {name!r} has a non-positive dimension in shape {shape}")
        try:
            dtype = np.dtype(props.get("dtype", "float32"))
        except TypeError as err:
            raise ValueError(f"spec {name!r} has an unknown dtype {props.get('dtype')!r}") from err
        return cls(name, dtype, shape)


def Spec(name: str, shape: tuple[int, ...], dtype: np.dtype) -> ArraySpec:  # noqa: N802
    """The earlier model-spec constructor, argument order (name, shape, dtype)."""
    return ArraySpec(name, np.dtype(dtype), tuple(shape))


def parse_specs(specs: SpecList, kind: str) -> list[ArraySpec]:
    """Check a Model's ``(name, props)`` list and return typed specs."""
    parsed = []
    for item in specs:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"{kind} specs must be (name, props) pairs, got {item!r}")
        parsed.append(ArraySpec.from_props(item[0], item[1]))
    duplicated = find_duplicates(s.name for s in parsed)
    if duplicated:
        raise ValueError(f"duplicate names in {kind} specs: {', '.join(duplicated)}")
    return parsed


def find_duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for name in names:
        if name in seen and name not in dups:
            dups.append(name)
        seen.add(name)
    return dups
