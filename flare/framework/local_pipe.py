"""An in-process pipe between a CDP and an agent of the learner's own process.

An external agent (an Act stream's) plays in a thread of the learner, beside the CDPs'
threads: a multiprocessing pipe would pickle every request and reply and cost two
system calls each way. These ends carry the same messages by reference instead, with a
``Connection``'s ``send``/``recv``/``close``, so ``CDPLink`` and the CDP treat them as
pipes. Messages from the agent go into the CDP's inbox (``post``), which wakes the CDP's
thread; replies go into the agent end's own queue.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

CLOSED = object()  # what a closed end sends: the other end sees EOF


class AgentEnd:
    """The agent's end (``CDPLink`` uses it as a ``Connection``)."""

    def __init__(self, post: Callable[[CDPEnd, object], None]) -> None:
        self._post = post
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self.peer = CDPEnd(self)
        self.closed = False

    def send(self, message: object) -> None:
        if self.closed or self.peer.closed:
            raise OSError("the pipe to the CDP is closed")
        self._post(self.peer, message)

    def recv(self) -> object:
        item = self._replies.get()
        if item is CLOSED:
            self._replies.put(CLOSED)  # (every later recv sees the end too)
            raise EOFError("the CDP closed the pipe")
        return item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._post(self.peer, CLOSED)


class CDPEnd:
    """The CDP's end: replies go straight into the agent end's queue."""

    def __init__(self, agent_end: AgentEnd) -> None:
        self._agent_end = agent_end
        self.closed = False

    def send(self, message: object) -> None:
        if self.closed or self._agent_end.closed:
            raise OSError("the agent closed the pipe")
        self._agent_end._replies.put(message)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._agent_end._replies.put(CLOSED)
