"""The agents' side of the pipes to the ComputationDataProcessors.

An agent process holds one ``CDPLink`` (one pipe) per CT, shared by every agent it
hosts; each agent's helper talks through its own ``CDPChannel`` on that link. The
requests waiting on a link travel as one message (predictions stacked, see
``RequestBundle``), so several agents in one process cost one pipe round trip per step
instead of one each: on a 2-core VM a pipe round trip and the wake-ups around it cost
far more than a CartPole step.
"""

from __future__ import annotations

from collections.abc import Iterable
from multiprocessing.connection import Connection

import greenlet

from flare.framework.local_pipe import AgentEnd
from flare.framework.pipe_messages import AgentDone, Reply, ReplyBundle, Request, RequestBundle


class CDPClosed(Exception):
    """The ComputationDataProcessor went away (the run is stopping); the agent should exit."""


class CDPLink:
    """One process's pipe to one CDP, shared by the agents ``agent_ids`` it hosts."""

    def __init__(self, connection: Connection | AgentEnd, agent_ids: Iterable[int]) -> None:
        self.connection = connection
        self.agent_ids = tuple(agent_ids)
        self._live = set(self.agent_ids)
        self._queued: dict[int, Request] = {}

    def queue(self, agent_id: int, request: Request) -> None:
        """Hold a request until ``flush`` sends every queued one in one message."""
        self._queued[agent_id] = request

    def flush(self) -> list[int]:
        """Send the queued requests; returns the agents they came from."""
        if not self._queued:
            return []
        queued, self._queued = self._queued, {}
        try:
            self.connection.send(RequestBundle.of(queued))
        except (OSError, BrokenPipeError, ValueError) as err:
            raise CDPClosed(str(err)) from None
        return sorted(queued)

    def receive(self) -> dict[int, Reply]:
        """The next bundle of replies, by agent id (blocks)."""
        try:
            bundle = self.connection.recv()
        except (EOFError, OSError, ValueError) as err:
            raise CDPClosed(str(err) or "the CDP closed the pipe") from None
        if not isinstance(bundle, ReplyBundle):
            raise TypeError(f"expected a ReplyBundle from the CDP, got {bundle!r}")
        return bundle.replies()

    def request_now(self, agent_id: int, request: Request) -> object:
        """One request, one reply, without an agent group (a single agent on its link)."""
        self.queue(agent_id, request)
        self.flush()
        while True:
            replies = self.receive()
            if agent_id in replies:
                return replies[agent_id]

    def done(self, agent_id: int) -> None:
        """The agent stops: the CDP no longer waits for it; the last one closes the pipe."""
        if agent_id not in self._live:
            return
        self._live.discard(agent_id)
        try:
            self.connection.send(AgentDone(agent_id))
        except (OSError, BrokenPipeError, ValueError):
            pass
        if not self._live:
            self.connection.close()


class CDPChannel:
    """One agent's line to one CDP: one request, one reply.

    Inside an agent group (``flare.framework.agent_group``) a request hands control to
    the group, which sends the requests of all its agents together; anywhere else it is
    a plain send and receive on the link.
    """

    def __init__(self, link: CDPLink | Connection, agent_id: int = 0) -> None:
        if isinstance(link, Connection):
            link = CDPLink(link, [agent_id])
        if agent_id not in link.agent_ids:
            raise ValueError(f"agent {agent_id} is not on this link (it has {link.agent_ids})")
        self.link = link
        self.agent_id = agent_id

    def request(self, message: Request) -> object:
        current = greenlet.getcurrent()
        if isinstance(current, AgentGreenlet):
            group = current.parent  # (the group's loop, which started the agent's greenlet)
            assert group is not None
            return group.switch(ChannelRequest(self.link, message))
        return self.link.request_now(self.agent_id, message)

    def close(self) -> None:
        self.link.done(self.agent_id)


class AgentGreenlet(greenlet.greenlet):
    """The greenlet an agent of a group plays in (its requests go through the group)."""


class ChannelRequest:
    """What an agent hands its group when it needs a reply: the request and its link."""

    __slots__ = ("link", "message")

    def __init__(self, link: CDPLink, message: Request) -> None:
        self.link = link
        self.message = message
