"""Checks that a spoiled request (actions' names, dtypes, shapes, ranges and bytes; bytes
that are no message at all; a negative actrep) is INVALID_ARGUMENT and harms no other
session."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import numpy as np

from flare.bridge.codec import encode
from flare.compliance.checks.base import (
    CODE,
    SERVICE,
    Send,
    bad_input,
    step_many_request,
    step_with,
    valid_tensors,
)
from flare.compliance.probe import CheckSkipped, Probe, valid_actions
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec, Language
from flare.simulator.v1 import simulator_pb2 as pb

Alter = Callable[[dict[str, pb.Tensor], EnvSpec], None]
"""Spoils a step's valid (encoded) actions in place."""


def _bad_actions(probe: Probe, what: str, alter: Alter) -> str:
    """A step whose valid actions ``alter`` spoils in place: INVALID_ARGUMENT."""

    def make(session_id: str, spec: EnvSpec) -> Send:
        tensors = valid_tensors(spec)
        alter(tensors, spec)
        return step_with(probe, session_id, tensors)

    return bad_input(probe, CODE.INVALID_ARGUMENT, what, make)


def unknown_action(probe: Probe) -> str:
    def alter(tensors, spec):
        tensors["no-such-action"] = encode(np.zeros(1, np.int64))

    return _bad_actions(probe, "an unknown action name", alter)


def missing_action(probe: Probe) -> str:
    def alter(tensors, spec):
        tensors.pop(spec.actions[0].name)

    return _bad_actions(probe, "a missing action", alter)


def wrong_dtype(probe: Probe) -> str:
    def alter(tensors, spec):
        action = spec.actions[0]
        other = np.float32 if action.dtype != np.float32 else np.float64
        tensors[action.name] = encode(np.zeros(action.shape, other))

    return _bad_actions(probe, "an action of the wrong dtype", alter)


def wrong_shape(probe: Probe) -> str:
    def alter(tensors, spec):
        action = spec.actions[0]
        if action.dtype == np.dtype(object):
            raise CheckSkipped("no numeric action")
        # one more leading dimension: the same bytes, so only the shape tells it apart
        tensors[action.name] = encode(np.zeros((1, *action.shape), action.dtype))

    return _bad_actions(probe, "an action of the wrong shape", alter)


def _value_limit(action: ArraySpec) -> int | None:
    """How many values a discrete or language action has; None for any other kind."""
    kind = action.kind
    if isinstance(kind, Discrete):
        return kind.num_values
    if isinstance(kind, Language):
        return kind.vocabulary_size
    return None


def out_of_range(probe: Probe) -> str:
    _, spec = probe.open()
    bounded = [(a, limit) for a in spec.actions if (limit := _value_limit(a)) is not None]
    if not bounded:
        raise CheckSkipped("no discrete or language action")
    action, limit = bounded[0]

    def set_to(value: int) -> Alter:
        def alter(tensors, _):
            tensors[action.name] = encode(np.full(action.shape, value, action.dtype))

        return alter

    above = _bad_actions(probe, "a value one past the range", set_to(limit))
    if action.dtype.kind != "i":
        return above
    _bad_actions(probe, "a value of -1", set_to(-1))
    return f"{above}; -1 too"


def malformed_bytes(probe: Probe) -> str:
    def alter(tensors, spec):
        numeric = [a for a in spec.actions if a.dtype != np.dtype(object)]
        if not numeric:
            raise CheckSkipped("no numeric action")
        tensor = tensors[numeric[0].name]
        tensor.data = tensor.data + b"\x00"  # one byte too many for its shape

    return _bad_actions(probe, "tensor bytes that do not fit the shape", alter)


GARBAGE = b"\xff\xff\xff\xff"
"""Request bytes no message parses: a field tag whose varint never ends."""


def malformed_request(probe: Probe) -> str:
    """Bytes that do not parse as the method's message are the client's mistake
    (INVALID_ARGUMENT), not the server's (INTERNAL, gRPC's own answer when parsing raises):
    on a unary call (Step) and on a stream (Session). The calls pass bytes through, as
    they come (no serializers)."""
    timeout, metadata = probe.target.timeout_s, probe.metadata

    def unary(_: str, __: EnvSpec) -> Send:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = probe.channel.unary_unary(
            f"/{SERVICE}/Step"
        )
        return lambda: call(GARBAGE, timeout=timeout, metadata=metadata)

    def stream(_: str, __: EnvSpec) -> Send:
        call: grpc.StreamStreamMultiCallable[bytes, bytes] = probe.channel.stream_stream(
            f"/{SERVICE}/Session"
        )
        return lambda: list(call(iter([GARBAGE]), timeout=timeout, metadata=metadata))

    bad_input(probe, CODE.INVALID_ARGUMENT, "a Step whose bytes are no StepRequest", unary)
    bad_input(probe, CODE.INVALID_ARGUMENT, "a Session message of bytes that do not parse", stream)
    return f"{len(GARBAGE)} unparsable bytes to Step and to a Session stream: INVALID_ARGUMENT"


def negative_actrep(probe: Probe) -> str:
    """actrep=-1 (0 means 1; a negative count means nothing) on Step and on StepMany."""

    def step(session_id: str, spec: EnvSpec) -> Send:
        return step_with(probe, session_id, valid_tensors(spec), actrep=-1)

    def step_many(session_id: str, spec: EnvSpec) -> Send:
        actions = [valid_actions(spec, np.random.default_rng(0))]
        request = step_many_request([session_id], actions, actrep=-1)
        return lambda: probe.call(probe.stub.StepMany, request)

    bad_input(probe, CODE.INVALID_ARGUMENT, "a Step with actrep=-1", step)
    bad_input(probe, CODE.INVALID_ARGUMENT, "a StepMany with actrep=-1", step_many)
    return "actrep=-1 is INVALID_ARGUMENT on Step and on StepMany, and another session steps on"
