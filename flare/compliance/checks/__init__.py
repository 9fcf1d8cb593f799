"""The contract, one check per function: each takes a ``Probe``, returns what it saw
when the simulator complies, and raises ``CheckFailed`` (why) when it does not.

The checks live by area (``server``, ``spec``, ``stepping``, ``bad_actions``, ``sessions``,
``limits``, ``batched``, on what ``base`` shares); this module puts them in their one
order, ``CHECKS``: the server as a whole first, then one session's episodes, bad requests,
session lifetimes and limits, and the batched calls last.
"""

from flare.compliance.checks.bad_actions import (
    malformed_bytes,
    malformed_request,
    missing_action,
    negative_actrep,
    out_of_range,
    unknown_action,
    wrong_dtype,
    wrong_shape,
)
from flare.compliance.checks.base import CODE, SERVICE, Check
from flare.compliance.checks.batched import step_many, step_many_atomic, step_many_stream
from flare.compliance.checks.limits import message_too_large, too_many_sessions
from flare.compliance.checks.server import health, protocol_version, reflection, server_info
from flare.compliance.checks.sessions import (
    close_session,
    long_session_id,
    sessions_isolated,
    stream_closes_session,
    stream_rules,
    unknown_session,
)
from flare.compliance.checks.spec import observations_match_spec, spec_well_formed
from flare.compliance.checks.stepping import (
    actrep,
    episode_end,
    reset_seed,
    reset_then_step,
    seeded_reset,
    seeds,
    time_out,
)
from flare.compliance.probe import (
    CheckFailed,
    CheckSkipped,
    Probe,
    Step,
    action_plan,
    decoded,
    valid_actions,
)

CHECKS: tuple[Check, ...] = (
    Check("health", 'grpc.health.v1 reports SERVING for "" and the Simulator', health),
    Check("reflection", "server reflection lists flare.simulator.v1.Simulator", reflection),
    Check("server-info", "GetServerInfo reports the version and the load", server_info),
    Check(
        "protocol-version",
        "an unknown or unstated (0) protocol version is FAILED_PRECONDITION",
        protocol_version,
    ),
    Check("spec", "the spec is well formed and GetSpec agrees", spec_well_formed),
    Check("observations", "observations and rewards match the spec", observations_match_spec),
    Check("reset-then-step", "Step before Reset is FAILED_PRECONDITION", reset_then_step),
    Check("actrep", "actrep=k equals k single steps, rewards summed", actrep),
    Check("seeded-reset", "one seed, one episode", seeded_reset),
    Check("seeds", "negative and extreme int64 seeds are seeds", seeds),
    Check("reset-seed", "a Reset with a seed replays that seed's episodes", reset_seed),
    Check("episode-end", "game over vs time-out, and nothing after the end", episode_end),
    Check("time-out", "a short step limit times out at exactly its length", time_out),
    Check("unknown-action", "unknown action name is INVALID_ARGUMENT", unknown_action),
    Check("missing-action", "missing action is INVALID_ARGUMENT", missing_action),
    Check("wrong-dtype", "wrong dtype is INVALID_ARGUMENT", wrong_dtype),
    Check("wrong-shape", "wrong shape is INVALID_ARGUMENT", wrong_shape),
    Check("out-of-range", "discrete value out of range is INVALID_ARGUMENT", out_of_range),
    Check("malformed-bytes", "malformed tensor bytes are INVALID_ARGUMENT", malformed_bytes),
    Check(
        "malformed-request",
        "request bytes that do not parse are INVALID_ARGUMENT",
        malformed_request,
    ),
    Check("negative-actrep", "actrep=-1 is INVALID_ARGUMENT (Step, StepMany)", negative_actrep),
    Check("unknown-session", "an unknown session is NOT_FOUND", unknown_session),
    Check("long-session-id", "a 100,000-character id is NOT_FOUND, briefly", long_session_id),
    Check("too-many-sessions", "past the session limit: RESOURCE_EXHAUSTED", too_many_sessions),
    Check("message-too-large", "past the message limit: RESOURCE_EXHAUSTED", message_too_large),
    Check("sessions-isolated", "concurrent sessions do not disturb each other", sessions_isolated),
    Check(
        "stream-closes-session", "a stream's session ends with the stream", stream_closes_session
    ),
    Check("stream-rules", "a Session stream: open first, once; only its own session", stream_rules),
    Check("close-session", "a closed session is NOT_FOUND", close_session),
    Check("step-many", "StepMany equals Step on each session", step_many),
    Check("step-many-atomic", "a refused StepMany steps no row", step_many_atomic),
    Check(
        "step-many-stream", "StepManyStream equals StepMany; it owns no session", step_many_stream
    ),
)

__all__ = [
    "CHECKS",
    "CODE",
    "SERVICE",
    "Check",
    "CheckFailed",
    "CheckSkipped",
    "Probe",
    "Step",
    "action_plan",
    "actrep",
    "close_session",
    "decoded",
    "episode_end",
    "health",
    "long_session_id",
    "malformed_bytes",
    "malformed_request",
    "message_too_large",
    "missing_action",
    "negative_actrep",
    "observations_match_spec",
    "out_of_range",
    "protocol_version",
    "reflection",
    "reset_then_step",
    "reset_seed",
    "seeded_reset",
    "seeds",
    "server_info",
    "sessions_isolated",
    "spec_well_formed",
    "step_many",
    "step_many_atomic",
    "step_many_stream",
    "stream_closes_session",
    "stream_rules",
    "time_out",
    "too_many_sessions",
    "unknown_action",
    "unknown_session",
    "valid_actions",
    "wrong_dtype",
    "wrong_shape",
]
