"""Checkpoints asked for from other threads (the Learner service's), written by the
Manager's supervising thread at its next turn: the only thread that may pause the run."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import Future

from flare.framework.run_events import CheckpointInfo

logger = logging.getLogger(__name__)


class CheckpointRequests:
    def __init__(self) -> None:
        self._waiting: queue.SimpleQueue[Future[CheckpointInfo]] = queue.SimpleQueue()

    def ask(self) -> Future[CheckpointInfo]:
        """A checkpoint to come; the future fails if writing it fails or the run ends."""
        future: Future[CheckpointInfo] = Future()
        self._waiting.put(future)
        return future

    def serve(self, write: Callable[[], CheckpointInfo]) -> None:
        """Write one checkpoint for every request waiting (in the supervising thread)."""
        while True:
            future = self._next()
            if future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(write())
            except Exception as err:  # noqa: BLE001 - the caller gets the error, the run goes on
                logger.warning("checkpoint failed: %s", err)
                future.set_exception(err)

    def fail_all(self, why: str) -> None:
        while (future := self._next()) is not None:
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError(why))

    def _next(self) -> Future[CheckpointInfo] | None:
        try:
            return self._waiting.get_nowait()
        except queue.Empty:
            return None
