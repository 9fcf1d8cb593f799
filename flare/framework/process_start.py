"""How agent processes start: a fork where that is safe, a forkserver once gRPC is in use.

gRPC cannot be forked while it is in use. A learner that has opened a ``RemoteEnv`` (to
read the dims, as the seed does with ``GymEnv``) or hosts a server hands its children
gRPC's poller and connections: their own channels then fail ("Wrong file descriptor
generation") or abort, and gRPC's fork handlers can deadlock ``fork()`` itself. A
forkserver is a fresh interpreter that never touched gRPC, so its children start clean.
Agents reach it through cloudpickle, so lambdas (reward shaping) and classes defined in
the training script still travel, and the pipes inside them through multiprocessing's
own reducers.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import pickle
import sys
from collections import ChainMap
from collections.abc import Mapping
from multiprocessing.context import BaseContext
from multiprocessing.reduction import ForkingPickler
from typing import Any

import cloudpickle

START_METHODS = ("auto", "fork", "forkserver")

# Imported once by the forkserver, so each agent process starts without importing them.
_FORKSERVER_PRELOAD = [
    "__main__",
    "flare.framework.agent_group",
    "flare.framework.agent",
    "flare.framework.env",
    "flare.agent_zoo",
    "torch",
]


def resolve_start_method(requested: str, modules: Mapping[str, Any] = sys.modules) -> str:
    """``auto`` forks unless this process has loaded gRPC; then it uses a forkserver."""
    if requested not in START_METHODS:
        raise ValueError(f"start_method must be one of {START_METHODS}, got {requested!r}")
    if requested != "auto":
        return requested
    return "forkserver" if "grpc" in modules else "fork"


def agent_context(method: str) -> BaseContext:
    """The multiprocessing context agent processes start from (``fork`` or ``forkserver``)."""
    context = mp.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(_FORKSERVER_PRELOAD)  # no effect once it runs
    return context


class _AgentPickler(cloudpickle.Pickler):
    """cloudpickle for code, multiprocessing's reducers for pipes and sockets."""

    def __init__(self, file: io.BytesIO) -> None:
        forking = ForkingPickler(io.BytesIO()).dispatch_table
        self.dispatch_table = ChainMap(cloudpickle.Pickler.dispatch_table, forking)
        super().__init__(file)


class CloudPickled:
    """Travels to a forkserver or spawned child as cloudpickle bytes; arrives as ``obj``.

    Pickling happens while multiprocessing starts the child, so the pipes inside ``obj``
    are duplicated into that child as for any ``Process`` argument.
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        buffer = io.BytesIO()
        try:
            _AgentPickler(buffer).dump(self.obj)
        except Exception as err:
            raise pickle.PicklingError(
                f"agents that start from a forkserver travel pickled, and this one cannot "
                f"be: {type(err).__name__}: {err}. Build what cannot be pickled (open files, "
                "locks, sockets, connections) inside the env factory or the agent's own "
                'process, or use Manager(start_method="fork") if this process uses no gRPC'
            ) from err
        return cloudpickle.loads, (buffer.getvalue(),)


def process_payload(obj: Any, context: BaseContext) -> Any:
    """``obj`` as a ``Process`` argument: as is for a fork, through cloudpickle otherwise."""
    return obj if context.get_start_method() == "fork" else CloudPickled(obj)
