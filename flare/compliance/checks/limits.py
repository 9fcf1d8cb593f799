"""Checks that the server caps what a client may take: sessions and message size."""

from __future__ import annotations

import grpc
import numpy as np

from flare.bridge.codec import encode
from flare.compliance.checks.base import CODE, Send, bad_input, step_with, valid_tensors
from flare.compliance.probe import CheckFailed, Probe
from flare.framework.env_spec import EnvSpec


def too_many_sessions(probe: Probe) -> str:
    limit = probe.target.max_sessions_probe

    def make(_: str, __: EnvSpec) -> Send:
        def open_until_refused() -> None:
            for _ in range(limit):
                probe.open()
            raise CheckFailed(
                f"{limit} more sessions opened without RESOURCE_EXHAUSTED; a server must "
                "cap its sessions (raise --max-sessions-probe if its cap is higher)"
            )

        return open_until_refused

    return bad_input(probe, CODE.RESOURCE_EXHAUSTED, "one session too many", make)


def message_too_large(probe: Probe) -> str:
    def make(session_id: str, spec: EnvSpec) -> Send:
        def grow_until_refused() -> None:
            size = 1 << 20
            while size <= probe.target.max_message_probe_mb << 20:
                tensors = valid_tensors(spec)
                tensors["padding"] = encode(np.zeros(size, np.uint8))
                try:
                    step_with(probe, session_id, tensors)()
                except grpc.RpcError as err:
                    if err.code() != CODE.INVALID_ARGUMENT:  # (padding is an unknown name)
                        raise
                size *= 2
            raise CheckFailed(
                f"a {probe.target.max_message_probe_mb} MiB message was not refused with "
                "RESOURCE_EXHAUSTED; a server must limit its message size"
            )

        return grow_until_refused

    return bad_input(probe, CODE.RESOURCE_EXHAUSTED, "a message over the size limit", make)
