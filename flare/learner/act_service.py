"""The Learner service's ``Act`` call: a simulator that drives its own loop plays as one
of the run's external agents (``flare.framework.external_agents``).

The stream opens with a spec checked against the run's (``flare.learner.act_checks``),
takes a free external agent, and is then played by it (``flare.learner.act_stream``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import grpc

from flare.bridge.errors import WireError
from flare.bridge.quoting import bounded, quoted
from flare.bridge.specs import spec_to_proto
from flare.framework.agent import EnvMismatchError
from flare.framework.env_spec import EnvSpec
from flare.framework.external_agents import ExternalAgents, RunNotStarted, RunOver, SlotsFull
from flare.learner.act_checks import check_open
from flare.learner.act_stream import ActEnv, SessionOutcome, play_stream
from flare.learner.v1 import learner_pb2 as pb

logger = logging.getLogger(__name__)


class ActHandler:
    """Answers Act streams for one run.

    Args:
        slots: the run's external agents.
        env_spec: the spec the run's models were built for.
        run_name: shown to the simulator when its stream opens.
        policy_version: the run's learning updates so far.
        open_wait_s: how long a stream that opens before the run starts (or during a
            checkpoint) waits for it; past it, UNAVAILABLE.
    """

    def __init__(
        self,
        slots: ExternalAgents,
        env_spec: EnvSpec,
        run_name: str,
        policy_version: Callable[[], int],
        open_wait_s: float = 10.0,
    ) -> None:
        self.slots = slots
        self.env_spec = env_spec
        self.run_name = run_name
        self.policy_version = policy_version
        self.open_wait_s = open_wait_s

    def spec_reply(self) -> pb.ActSpecReply:
        return pb.ActSpecReply(
            spec=spec_to_proto(self.env_spec),
            act_streams_max=len(self.slots),
            act_streams=self.slots.streams,
        )

    def act(
        self, requests: Iterator[pb.ActRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ActReply]:
        if not len(self.slots):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "this run accepts no Act streams")
        try:
            first = next(requests)
        except StopIteration:
            return
        if first.WhichOneof("request") != "open":
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "the first message of an Act stream is open"
            )
        try:
            spec, name = check_open(first.open, self.env_spec)
        except WireError as err:
            context.abort(err.code, bounded(err.message))
        try:
            session = self.slots.open(self.open_wait_s)
        except SlotsFull as err:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
        except RunNotStarted as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        except RunOver as err:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
        try:
            session.agent.check_env(ActEnv(spec, None, self.policy_version))
        except EnvMismatchError as err:
            session.close()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, bounded(f"spec: {err}"))
        agent = session.agent.id
        label = quoted(name) if name else context.peer()
        logger.info("Act stream %s plays as agent %d", label, agent)
        try:
            yield pb.ActReply(
                opened=pb.ActOpened(
                    agent=agent,
                    run_name=self.run_name,
                    protocol_version=pb.ACT_PROTOCOL_VERSION_1,
                    policy_version=self.policy_version(),
                )
            )
        except BaseException:
            session.close()
            raise
        outcome = SessionOutcome(grpc.StatusCode.CANCELLED, "cancelled")
        for item in play_stream(session, spec, requests, self.policy_version):
            if isinstance(item, SessionOutcome):
                outcome = item
            else:
                yield item
        logger.info("Act stream %s (agent %d) ended: %s", label, agent, outcome.message)
        if outcome.code is not grpc.StatusCode.OK:
            context.abort(outcome.code, bounded(outcome.message))
