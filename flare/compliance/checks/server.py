"""Checks of the server as a whole, before any session: health, reflection and the
protocol version."""

from __future__ import annotations

from typing import cast

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from flare.compliance.checks.base import CODE, SERVICE
from flare.compliance.probe import CheckFailed, Probe
from flare.simulator.v1 import simulator_pb2 as pb

HEALTH_NAMES = ("", SERVICE)
"""The service names a simulator reports SERVING for: "" (the server) and the Simulator."""


def health(probe: Probe) -> str:
    """Ask grpc.health.v1.Health/Check for each name; a failure says what was asked and
    what came back for each (a bare UNIMPLEMENTED says neither)."""
    answers = {}
    for service in HEALTH_NAMES:
        try:
            answer = probe.call(probe.health.Check, health_pb2.HealthCheckRequest(service=service))
        except grpc.RpcError as err:
            details = f" ({err.details()})" if err.details() else ""
            answers[service] = f"{err.code().name}{details}"
        else:
            answers[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    if any(answer != "SERVING" for answer in answers.values()):
        asked = " and ".join(repr(service) for service in HEALTH_NAMES)
        got = ", ".join(f"{service!r}: {answer}" for service, answer in answers.items())
        raise CheckFailed(
            f"grpc.health.v1.Health/Check was asked for {asked}, and answered {got}; a "
            "simulator serves the health service and reports SERVING for both names"
        )
    return f"SERVING for the server ('') and {SERVICE!r}"


def reflection(probe: Probe) -> str:
    """gRPC server reflection (ListServices) names the Simulator service, so tools such as
    grpcurl can call the server without the .proto."""
    stub = reflection_pb2_grpc.ServerReflectionStub(probe.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    what = "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo (ListServices)"
    try:
        answers = list(
            stub.ServerReflectionInfo(
                iter([request]), timeout=probe.target.timeout_s, metadata=probe.metadata
            )
        )
    except grpc.RpcError as err:
        raise CheckFailed(
            f"{what} failed with {err.code().name} ({err.details()}); a simulator serves "
            f"server reflection listing {SERVICE}"
        ) from None
    if len(answers) != 1:
        raise CheckFailed(f"{what}: {len(answers)} answers to one request")
    answer = answers[0]
    if answer.HasField("error_response"):
        error = answer.error_response
        raise CheckFailed(f"{what} answered error {error.error_code}: {error.error_message}")
    names = [service.name for service in answer.list_services_response.service]
    if SERVICE not in names:
        raise CheckFailed(f"{what} lists {names}, not {SERVICE}")
    return f"reflection lists {SERVICE} among {len(names)} services"


def protocol_version(probe: Probe) -> str:
    """A version the server does not speak, and no version at all (0, UNSPECIFIED), are
    both FAILED_PRECONDITION: a client that states none must not be served by guess."""
    for version, name in ((999, "999 (no such version)"), (0, "0 (UNSPECIFIED)")):
        request = probe.open_request()
        request.protocol_version = cast("pb.ProtocolVersion", version)
        with probe.expect_status(CODE.FAILED_PRECONDITION, f"OpenSession with version {name}"):
            probe.track(probe.call(probe.stub.OpenSession, request).session_id)
    return "versions 999 and 0 (UNSPECIFIED) refused with FAILED_PRECONDITION"
