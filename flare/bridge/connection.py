"""How a client reaches simulator servers: one value, shared by every channel it opens.

``ChannelSettings`` is hashable, so sessions opened with equal settings on one server can
share a batched stream (``flare.bridge.step_batch``), and a farm client opens a channel to
any of its servers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from flare.bridge.security import bearer, check_token_channel, open_channel


@dataclass(frozen=True)
class ChannelSettings:
    """The channel options, credentials and deadline of a client's calls.

    Args:
        timeout_s: the deadline of every call (of every answer, on a stream).
        max_message_bytes: the largest message sent or received.
        tls_root_cert: a PEM file of the certificate(s) to trust; connects over TLS.
        token: the servers' bearer token, sent with every call.
        insecure: send ``token`` without TLS beyond loopback anyway (a trusted network).
    """

    timeout_s: float = 30.0
    max_message_bytes: int = 64 * 1024 * 1024
    tls_root_cert: str | None = None
    token: str | None = None
    insecure: bool = False

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.token) if self.token else ()

    def check(self, address: str) -> None:
        """``ValueError`` when the token would cross a network in the clear to ``address``."""
        check_token_channel(
            address, self.token, tls=self.tls_root_cert is not None, insecure=self.insecure
        )

    def open(self, address: str) -> grpc.Channel:
        """A new channel to ``address``."""
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
        return open_channel(address, self.tls_root_cert, options)
