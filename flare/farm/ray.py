"""Simulator servers placed on a Ray cluster, beyond one machine (the ``flare[ray]`` extra).

Each server is a Ray actor that runs ``flare serve ...`` (or any simulator command that
prints ``listening on HOST:PORT``) as its child; the actor asks Ray for the resources a
server needs (CPUs, or a custom resource such as ``flare_sim`` that only simulator nodes
have). Ray restarts an actor that dies (``max_restarts``), on any node that fits; the
farm then writes the server's new address into its farm file, which the learner's envs
follow, so training goes on against the restarted server.

    with RayFarm(4, ["serve", "gym", "--game", "CartPole-v1"], farm_file="farm.txt"):
        ...  # flare train with [env] farm = "farm.txt"

On Linux, Ray replaces 127.0.0.1 with the machine's interface address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set; ``init_local_ray`` sets it (and turns
usage stats off) and binds the cluster to loopback, for tests and single machines.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from flare.bridge.farm import write_farm_file
from flare.bridge.launch import flare_command, simulator_process

logger = logging.getLogger(__name__)

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def init_local_ray(num_cpus: int = 2, object_store_mb: int = 80, **kwargs: Any) -> None:
    """Start a Ray cluster on this machine, bound to loopback only, with no dashboard and
    a small object store (FLARE's servers pass no objects through it). Ray reads the
    loopback setting when it is imported: import this module before ray, or set
    ``LOOPBACK_ENV`` in the environment yourself."""
    imported = "ray" in sys.modules
    os.environ.update(LOOPBACK_ENV)
    import ray
    from ray._private import ray_constants

    if imported and ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError(
            "ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set, so its "
            "cluster would bind the machine's interface address: set it (and "
            "RAY_USAGE_STATS_ENABLED=0) before ray is imported"
        )

    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        object_store_memory=object_store_mb * 1024 * 1024,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        **kwargs,
    )


@dataclass(frozen=True)
class ServerResources:
    """What each server asks Ray for, and how often Ray restarts one that dies.

    Args:
        num_cpus: CPUs per server (fractions share a CPU).
        resources: custom resources per server, e.g. ``{"flare_sim": 1}`` to place servers
            only on nodes started with ``--resources '{"flare_sim": 8}'``.
        max_restarts: restarts of a server that dies (-1: no limit).
        host: the address servers bind (``0.0.0.0`` on a real cluster, with ``--insecure``
            or TLS: loopback serves only the node itself).
    """

    num_cpus: float = 1.0
    resources: dict[str, float] = field(default_factory=dict)
    max_restarts: int = 3
    host: str = "127.0.0.1"


class _Server:
    """The actor: one simulator server as its child process, for the actor's life."""

    def __init__(self, command: list[str]) -> None:
        self._stack = ExitStack()
        # (the server dies with the actor: a killed actor leaves no server behind)
        self._address = self._stack.enter_context(simulator_process(command, die_with_parent=True))

    def address(self) -> str:
        return self._address

    def node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def stop(self) -> None:
        self._stack.close()


def serve_command(serve_args: Sequence[str], host: str) -> list[str]:
    """``flare serve SERVE_ARGS`` on a free port of ``host``."""
    return [*flare_command(), *serve_args, "--address", f"{host}:0"]


class RayFarm:
    """``servers`` simulator servers as Ray actors; ``addresses`` (and ``farm_file``) are
    kept current as Ray restarts them. ``command`` is ``flare`` arguments (e.g. ``["serve",
    "gym", "--game", "CartPole-v1"]``; the port is chosen for it) or, with ``raw=True``, a
    whole command of its own that picks its port and prints ``listening on HOST:PORT``.
    Ray must be initialised first (``ray.init``, or ``init_local_ray``)."""

    def __init__(
        self,
        servers: int,
        command: Sequence[str],
        farm_file: str | Path | None = None,
        resources: ServerResources | None = None,
        raw: bool = False,
        poll_s: float = 0.5,
    ) -> None:
        if servers < 1:
            raise ValueError(f"servers must be >= 1, got {servers}")
        self.servers = servers
        self.resources = resources or ServerResources()
        self.command = list(command) if raw else serve_command(command, self.resources.host)
        self.farm_file = Path(farm_file) if farm_file is not None else None
        self.poll_s = poll_s
        self.actors: list[Any] = []
        self._addresses: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._addresses)

    def __enter__(self) -> RayFarm:
        import ray

        actor_class = ray.remote(_Server)
        options = self.resources
        self.actors = [
            actor_class.options(
                num_cpus=options.num_cpus,
                resources=dict(options.resources),
                max_restarts=options.max_restarts,
            ).remote(self.command)
            for _ in range(self.servers)
        ]
        try:
            self._addresses = list(ray.get([actor.address.remote() for actor in self.actors]))
        except BaseException:
            self._kill_all()
            raise
        self._write()
        self._watcher = threading.Thread(target=self._watch, name="flare-ray-farm", daemon=True)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        """Follow restarts: an actor's address is asked for again and again; a restarted
        one answers its new server's (once Ray has brought it back)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        while not self._stop.wait(self.poll_s):
            for i, actor in enumerate(self.actors):
                try:
                    address = ray.get(actor.address.remote(), timeout=max(5.0, self.poll_s))
                except GetTimeoutError:
                    continue  # (restarting: asked again next round)
                except RayActorError as err:  # (restarting, or out of restarts)
                    address = ""  # (left out of the farm file until it answers again)
                    if self._addresses[i]:
                        logger.warning("simulator actor %d is unavailable: %s", i, err)
                if self._stop.is_set():
                    return
                with self._lock:
                    changed = address != self._addresses[i]
                    if changed:
                        logger.warning(
                            "simulator actor %d: %s -> %s", i, self._addresses[i], address
                        )
                        self._addresses[i] = address
                if changed:
                    self._write()

    def _write(self) -> None:
        live = [a for a in self.addresses if a]
        if self.farm_file is not None and live:
            write_farm_file(self.farm_file, live)

    def _kill_all(self) -> None:
        import ray

        for actor in self.actors:
            try:
                ray.get(actor.stop.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - it may be dead already
                pass
            ray.kill(actor, no_restart=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(30)
        self._kill_all()
        if self.farm_file is not None:
            self.farm_file.unlink(missing_ok=True)
