"""Data specs: what a Model reads and writes, by name.

A Model declares its specs as ``[(name, props), ...]`` where ``props`` is a dict with a
``shape`` (per-instance, no batch dimension) and an optional ``dtype`` (default float32).
``Spec`` is the checked, typed form the framework works with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SpecList = Sequence[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Spec:
    """One named array: its per-instance shape and numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def from_props(cls, name: str, props: dict[str, Any]) -> Spec:
        if not isinstance(props, dict) or "shape" not in props:
            raise ValueError(f"spec {name!r} must be a dict with a 'shape' key, got {props!r}")
        shape = tuple(int(d) for d in props["shape"])
        if any(d <= 0 for d in shape):
            raise ValueError(f"spec {name!r} has a non-positive dimension in shape {shape}")
        try:
            dtype = np.dtype(props.get("dtype", "float32"))
        except TypeError as err:
            raise ValueError(f"spec {name!r} has an unknown dtype {props.get('dtype')!r}") from err
        return cls(name, shape, dtype)


def parse_specs(specs: SpecList, kind: str) -> list[Spec]:
    """Check a Model's ``(name, props)`` list and return typed specs."""
    parsed = []
    for item in specs:
        if not (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"{kind} specs must be (name, props) pairs, got {item!r}")
        parsed.append(Spec.from_props(item[0], item[1]))
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
