"""The Learner service's calls, answered from a ``RunTracker``.

The tracker answers from any thread, so every call here runs in a gRPC worker thread
without touching the Manager's own bookkeeping; ``flare.learner.service`` serves it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import grpc

from flare.bridge.quoting import bounded, quoted
from flare.learner.act_service import ActHandler
from flare.learner.messages import checkpoint_to_proto, event_to_proto, status_to_proto
from flare.learner.status import ProgressEvent, ProgressKind, RunState
from flare.learner.tracker import RunTracker
from flare.learner.v1 import learner_pb2 as pb
from flare.learner.v1 import learner_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

# a Stop call's reason is quoted this long in the run's stop_reason and the log
MAX_STOP_REASON = 200


class LearnerServicer(pb_grpc.LearnerServicer):
    """The calls of ``flare.learner.v1.Learner`` on one run.

    Args:
        tracker: the run's tracker.
        checkpoint_timeout_s: the longest a SaveCheckpoint waits for its checkpoint (less
            when the call's deadline is nearer); past it, DEADLINE_EXCEEDED.
        poll_s: how often a WatchProgress stream looks whether its client is still there
            (a cancelled stream frees its thread within this).
        act: answers Act streams (None: the run accepts none).
    """

    def __init__(
        self,
        tracker: RunTracker,
        checkpoint_timeout_s: float = 60.0,
        poll_s: float = 0.5,
        act: ActHandler | None = None,
    ) -> None:
        if checkpoint_timeout_s <= 0 or poll_s <= 0:
            raise ValueError("checkpoint_timeout_s and poll_s must be > 0")
        self.tracker = tracker
        self.checkpoint_timeout_s = checkpoint_timeout_s
        self.poll_s = poll_s
        self.act = act
        self._closing = threading.Event()

    def close(self) -> None:
        """The server is stopping: every WatchProgress stream ends (UNAVAILABLE)."""
        self._closing.set()

    def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.ServicerContext
    ) -> pb.RunStatus:
        return status_to_proto(self.tracker.status())

    def WatchProgress(
        self, request: pb.WatchProgressRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ProgressEvent]:
        subscription = self.tracker.subscribe()
        try:
            while context.is_active():
                if self._closing.is_set():
                    context.abort(grpc.StatusCode.UNAVAILABLE, "the learner's server is stopping")
                try:
                    event = subscription.next(self.poll_s)
                except TimeoutError:
                    continue
                if event is None:  # the run finished: a watcher always sees FINISHED last
                    event = ProgressEvent(ProgressKind.FINISHED, self.tracker.status())
                yield event_to_proto(event)
                if event.kind is ProgressKind.FINISHED:
                    return
        finally:
            self.tracker.unsubscribe(subscription)

    def SaveCheckpoint(
        self, request: pb.SaveCheckpointRequest, context: grpc.ServicerContext
    ) -> pb.CheckpointReply:
        timeout = self.checkpoint_timeout_s
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = max(0.0, min(timeout, remaining))
        try:
            info = self.tracker.save_checkpoint(timeout)
        except TimeoutError:
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no checkpoint was written within {timeout:.1f} s (it may still be)",
            )
        except Exception as err:  # noqa: BLE001 - the caller gets the error, the run goes on
            if self.tracker.status().state is not RunState.RUNNING:  # or it ended meanwhile
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, bounded(str(err)))
            logger.warning("a checkpoint asked over gRPC failed: %s", err)
            context.abort(grpc.StatusCode.INTERNAL, bounded(f"the checkpoint failed: {err}"))
        return pb.CheckpointReply(checkpoint=checkpoint_to_proto(info))

    def Act(
        self, request_iterator: Iterator[pb.ActRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ActReply]:
        if self.act is None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "this run accepts no Act streams")
        if self._closing.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the learner's server is stopping")
        yield from self.act.act(request_iterator, context)

    def GetActSpec(
        self, request: pb.GetActSpecRequest, context: grpc.ServicerContext
    ) -> pb.ActSpecReply:
        if self.act is None:
            return pb.ActSpecReply()
        return self.act.spec_reply()

    def Stop(self, request: pb.StopRequest, context: grpc.ServicerContext) -> pb.StopReply:
        if self.tracker.status().state is RunState.FINISHED:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the run has already finished")
        reason = "Stop call"
        if request.reason:
            reason = f"Stop call: {quoted(request.reason, MAX_STOP_REASON)}"
        logger.warning("%s asks the run to stop (%s)", context.peer(), reason)
        self.tracker.stop(reason)
        return pb.StopReply(status=status_to_proto(self.tracker.status()))
