"""The contract, one check per function: each takes a ``Probe``, returns what it saw
when the simulator complies, and raises ``CheckFailed`` (why) when it does not.

The checks live by area (``server``, ``spec``, ``stepping``, ``bad_actions``, ``sessions``,
``limits``, on what ``base`` shares); this module puts them in their one order, ``CHECKS``.
"""

from flare.compliance.checks.bad_actions import (
    malformed_bytes,
    missing_action,
    out_of_range,
    unknown_action,
    wrong_dtype,
    wrong_shape,
)
from flare.compliance.checks.base import CODE, SERVICE, Check
from flare.compliance.checks.limits import message_too_large, too_many_sessions
from flare.compliance.checks.server import health, protocol_version
from flare.compliance.checks.sessions import (
    close_session,
    sessions_isolated,
    stream_closes_session,
    unknown_session,
)
from flare.compliance.checks.spec import observations_match_spec, spec_well_formed
from flare.compliance.checks.stepping import (
    actrep,
    episode_end,
    reset_then_step,
    seeded_reset,
    step_many,
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
    Check("health", "grpc.health.v1 reports SERVING", health),
    Check(
        "protocol-version", "an unknown protocol version is FAILED_PRECONDITION", protocol_version
    ),
    Check("spec", "the spec is well formed and GetSpec agrees", spec_well_formed),
    Check("observations", "observations and rewards match the spec", observations_match_spec),
    Check("reset-then-step", "Step before Reset is FAILED_PRECONDITION", reset_then_step),
    Check("actrep", "actrep=k equals k single steps, rewards summed", actrep),
    Check("seeded-reset", "one seed, one episode", seeded_reset),
    Check("episode-end", "game over vs time-out, and nothing after the end", episode_end),
    Check("unknown-action", "unknown action name is INVALID_ARGUMENT", unknown_action),
    Check("missing-action", "missing action is INVALID_ARGUMENT", missing_action),
    Check("wrong-dtype", "wrong dtype is INVALID_ARGUMENT", wrong_dtype),
    Check("wrong-shape", "wrong shape is INVALID_ARGUMENT", wrong_shape),
    Check("out-of-range", "discrete value out of range is INVALID_ARGUMENT", out_of_range),
    Check("malformed-bytes", "malformed tensor bytes are INVALID_ARGUMENT", malformed_bytes),
    Check("unknown-session", "an unknown session is NOT_FOUND", unknown_session),
    Check("too-many-sessions", "past the session limit: RESOURCE_EXHAUSTED", too_many_sessions),
    Check("message-too-large", "past the message limit: RESOURCE_EXHAUSTED", message_too_large),
    Check("sessions-isolated", "concurrent sessions do not disturb each other", sessions_isolated),
    Check(
        "stream-closes-session", "a stream's session ends with the stream", stream_closes_session
    ),
    Check("close-session", "a closed session is NOT_FOUND", close_session),
    Check("step-many", "StepMany equals Step on each session", step_many),
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
    "malformed_bytes",
    "message_too_large",
    "missing_action",
    "observations_match_spec",
    "out_of_range",
    "protocol_version",
    "reset_then_step",
    "seeded_reset",
    "sessions_isolated",
    "spec_well_formed",
    "step_many",
    "stream_closes_session",
    "too_many_sessions",
    "unknown_action",
    "unknown_session",
    "valid_actions",
    "wrong_dtype",
    "wrong_shape",
]
