"""Saving nested state (dicts, lists, numbers, strings, numpy arrays) without pickle.

An agent's snapshot (its helpers' buffers, counters and random states, its episode so
far) is a tree of plain values and arrays. It is written as one ``.npz`` file: the arrays
as themselves, the tree's shape as JSON beside them, and read back with
``allow_pickle=False``, so a snapshot file can never run code.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from flare.framework.experience import Experience
from flare.framework.outcomes import NextStep

TREE_KEY = "__tree__"


def _pack(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.hasobject:  # (np.savez would pickle it)
            raise TypeError("cannot save an array of Python objects in a snapshot")
        arrays.append(array)
        return {"nd": len(arrays) - 1}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"dict": {k: _pack(v, arrays) for k, v in value.items()}}
        return {"items": [[_pack(k, arrays), _pack(v, arrays)] for k, v in value.items()]}
    if isinstance(value, list):
        return {"list": [_pack(v, arrays) for v in value]}
    if isinstance(value, tuple):
        return {"tuple": [_pack(v, arrays) for v in value]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot save a {type(value).__name__} in a snapshot")


def _unpack(node: Any, arrays: Any) -> Any:
    if not isinstance(node, dict):
        return node
    (kind, body), *_ = node.items()
    if kind == "nd":
        return arrays[f"arr_{body}"]
    if kind == "dict":
        return {k: _unpack(v, arrays) for k, v in body.items()}
    if kind == "items":
        return {_unpack(k, arrays): _unpack(v, arrays) for k, v in body}
    if kind == "list":
        return [_unpack(v, arrays) for v in body]
    if kind == "tuple":
        return tuple(_unpack(v, arrays) for v in body)
    raise ValueError(f"not a snapshot node: {kind!r}")


def save_tree(path: Path, tree: Any) -> int:
    """Write ``tree`` to ``path`` (an ``.npz``); returns the bytes written."""
    arrays: list[np.ndarray] = []
    shape = json.dumps(_pack(tree, arrays))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        named: dict[str, Any] = {f"arr_{i}": a for i, a in enumerate(arrays)}
        named[TREE_KEY] = np.frombuffer(shape.encode(), dtype=np.uint8)
        np.savez(f, **named)
    os.replace(tmp, path)
    return path.stat().st_size


def load_tree(path: Path) -> Any:
    with np.load(path, allow_pickle=False) as arrays:
        shape = json.loads(bytes(arrays[TREE_KEY]).decode())
        loaded = {name: arrays[name] for name in arrays.files if name != TREE_KEY}
    return _unpack(shape, loaded)


# ----- the values agents keep ----------------------------------------------------------------
def experiences_state(experiences: list[Experience]) -> dict[str, Any]:
    """Experiences as columns (one stacked array per name) when they all share names and
    shapes, which a buffer's do; one entry each otherwise."""
    if not experiences:
        return {"n": 0}
    first = experiences[0].data
    layout = {k: (np.asarray(v).shape, np.asarray(v).dtype) for k, v in first.items()}
    uniform = all(
        e.data.keys() == first.keys()
        and all((np.asarray(v).shape, np.asarray(v).dtype) == layout[k] for k, v in e.data.items())
        for e in experiences
    )
    flags = {
        "alive": np.array([int(e.alive) for e in experiences], dtype=np.int8),
        "run_ends": np.array([e.run_ends for e in experiences], dtype=bool),
    }
    if uniform:
        columns = {k: np.stack([np.asarray(e.data[k]) for e in experiences]) for k in first}
        return {"n": len(experiences), "columns": columns, **flags}
    rows = [{k: np.asarray(v) for k, v in e.data.items()} for e in experiences]
    return {"n": len(experiences), "rows": rows, **flags}


def experiences_from(state: dict[str, Any]) -> list[Experience]:
    n = int(state["n"])
    if n == 0:
        return []
    if "columns" in state:
        columns = state["columns"]
        rows = [{k: columns[k][i] for k in columns} for i in range(n)]
    else:
        rows = state["rows"]
    return [
        Experience(
            data=rows[i],
            alive=NextStep(int(state["alive"][i])),
            run_ends=bool(state["run_ends"][i]),
        )
        for i in range(n)
    ]


def python_random_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, np.array(internal, dtype=np.uint64), gauss]


def set_python_random_state(rng: random.Random, state: list[Any]) -> None:
    version, internal, gauss = state
    rng.setstate((int(version), tuple(int(x) for x in internal), gauss))


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator's state (its bit generator's, ints of any size)."""
    return dict(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
