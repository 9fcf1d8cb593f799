"""The one exception type for wire errors, on both sides of the bridge."""

from __future__ import annotations

from typing import Self

import grpc

from flare.bridge.quoting import MAX_DETAILS, MAX_QUOTED, bounded, quoted

__all__ = [
    "MAX_DETAILS",
    "MAX_QUOTED",
    "SimulatorError",
    "WireError",
    "bounded",
    "invalid",
    "precondition",
    "quoted",
]


class WireError(Exception):
    """A gRPC call failed with a status; ``code`` says which, the message why (the base of
    the simulator's and the learner's errors)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> Self:
        return cls(error.code(), error.details() or "")


class SimulatorError(WireError):
    """A simulator call failed with a gRPC status; ``code`` says which, the message why."""


def invalid(message: str) -> SimulatorError:
    return SimulatorError(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str) -> SimulatorError:
    return SimulatorError(grpc.StatusCode.FAILED_PRECONDITION, message)
