"""Checks of the server as a whole, before any session: health and the protocol version."""

from __future__ import annotations

from typing import cast

from grpc_health.v1 import health_pb2

from flare.compliance.checks.base import CODE, SERVICE
from flare.compliance.probe import CheckFailed, Probe
from flare.simulator.v1 import simulator_pb2 as pb


def health(probe: Probe) -> str:
    for service in ("", SERVICE):
        answer = probe.health.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=probe.target.timeout_s
        )
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            raise CheckFailed(f"health of {service or 'the server'!r} is {name}, not SERVING")
    return f"SERVING for the server and {SERVICE}"


def protocol_version(probe: Probe) -> str:
    request = probe.open_request()
    request.protocol_version = cast("pb.ProtocolVersion", 999)  # (no such version)
    with probe.expect_status(CODE.FAILED_PRECONDITION, "OpenSession with protocol_version 999"):
        probe.call(probe.stub.OpenSession, request)
    return "version 999 refused with FAILED_PRECONDITION"
