"""Checks of the server as a whole, before any session: health, reflection and the
protocol version."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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


def server_info(probe: Probe) -> str:
    """GetServerInfo reports the contract's version, the software, and the load a farm
    client spreads its sessions by: a session and a stream opened by this check show in
    the counts, and leave them when they close (the check wants the server to itself)."""
    before = _server_info(probe)
    if pb.PROTOCOL_VERSION_1 not in before.protocol_versions:
        raise CheckFailed(
            f"GetServerInfo lists protocol versions {list(before.protocol_versions)}, "
            "not PROTOCOL_VERSION_1 (1)"
        )
    if not before.server_version.strip():
        raise CheckFailed("GetServerInfo's server_version is empty; name the software")
    session_id, _ = probe.open(seed=1)
    opened = _server_info(probe)
    if opened.open_sessions != before.open_sessions + 1:
        raise CheckFailed(
            f"open_sessions went from {before.open_sessions} to {opened.open_sessions} "
            "when this check opened one session"
        )
    for name, limit, count in (
        ("sessions", opened.max_sessions, opened.open_sessions),
        ("streams", opened.max_streams, opened.open_streams),
    ):
        if limit < 0 or 0 < limit < count:
            raise CheckFailed(f"max_{name} is {limit} with {count} open ({name} 0: no limit)")
    probe.close(session_id)
    closed = _server_info(probe)
    if closed.open_sessions != before.open_sessions:
        raise CheckFailed(
            f"open_sessions is {closed.open_sessions} after this check's session closed, "
            f"{before.open_sessions} before it opened"
        )
    streams = _open_streams_with_one_more(probe)
    if streams != before.open_streams + 1:
        raise CheckFailed(
            f"open_streams went from {before.open_streams} to {streams} while this check "
            "held one Session stream open"
        )
    return (
        f"{before.server_version!r}: sessions {before.open_sessions} -> "
        f"{opened.open_sessions} -> {closed.open_sessions}, streams +1 while one is open"
    )


def _server_info(probe: Probe) -> pb.GetServerInfoResponse:
    try:
        return probe.call(probe.stub.GetServerInfo, pb.GetServerInfoRequest())
    except grpc.RpcError as err:
        raise CheckFailed(
            f"GetServerInfo failed with {err.code().name} ({err.details()}); a simulator "
            "reports its load so that a farm client can spread sessions over servers"
        ) from None


def _open_streams_with_one_more(probe: Probe) -> int:
    """open_streams while a Session stream of this check's is open."""
    release = threading.Event()

    def requests() -> Iterator[pb.SessionRequest]:
        yield pb.SessionRequest(open=probe.open_request(seed=2))
        release.wait(probe.target.timeout_s)

    answers = probe.stub.Session(
        requests(), timeout=probe.target.timeout_s, metadata=probe.metadata
    )
    try:
        next(answers)  # (the stream's session is open: the stream surely counts)
        return _server_info(probe).open_streams
    finally:
        release.set()
        for _ in answers:  # (the stream ends OK once its requests end)
            pass
