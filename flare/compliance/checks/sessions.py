"""Checks of session lifetime and isolation: unknown, concurrent, streamed and closed
sessions."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np

from flare.bridge.codec import encode
from flare.bridge.specs import spec_from_proto
from flare.compliance.checks.base import (
    CODE,
    Send,
    bad_input,
    play,
    same_observations,
    step_with,
    valid_tensors,
)
from flare.compliance.probe import CheckFailed, Probe, action_plan, valid_actions
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb


def unknown_session(probe: Probe) -> str:
    def make(_: str, spec: EnvSpec) -> Send:
        return step_with(probe, "no-such-session", valid_tensors(spec))

    return bad_input(probe, CODE.NOT_FOUND, "a step of an unknown session", make)


def sessions_isolated(probe: Probe, workers: int = 4, steps: int = 40) -> str:
    sessions = [probe.open(seed=100 + i) for i in range(workers)]
    spec = sessions[0][1]
    plans = [action_plan(spec, seed=200 + i, length=steps) for i in range(workers)]
    together: list = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            together[index] = play(probe, sessions[index][0], plans[index])
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise CheckFailed(f"concurrent sessions failed: {errors[0]}")
    for index in range(workers):  # replay each alone, with the same seed and actions
        alone, _ = probe.open(seed=100 + index)
        replay = play(probe, alone, plans[index])
        for t, (x, y) in enumerate(zip(together[index], replay, strict=True)):
            if not same_observations(x, y):
                raise CheckFailed(f"session {index} played concurrently differs at step {t}")
    return f"{workers} sessions stepped at once equal each played alone"


def stream_closes_session(probe: Probe) -> str:
    spec_actions = None

    def requests():
        yield pb.SessionRequest(open=probe.open_request(seed=3))
        yield pb.SessionRequest(reset=pb.ResetRequest())
        give_up = time.monotonic() + probe.target.timeout_s
        while spec_actions is None:  # the step needs the spec the open answer brings
            if time.monotonic() > give_up:
                return
            time.sleep(0.01)
        step = pb.StepRequest()
        for name, array in spec_actions.items():
            step.actions[name].CopyFrom(encode(array))
        yield pb.SessionRequest(step=step)

    answers = probe.stub.Session(
        requests(), timeout=probe.target.timeout_s, metadata=probe.metadata
    )
    opened = next(answers).open
    spec_actions = valid_actions(spec_from_proto(opened.spec), np.random.default_rng(3))
    kinds = [answer.WhichOneof("response") for answer in answers]  # the stream ends here
    if kinds != ["reset", "step"]:
        raise CheckFailed(f"the stream answered {kinds}, expected ['reset', 'step']")
    deadline = time.monotonic() + 5
    while True:  # the server may close it a moment after the stream ends
        try:
            probe.call(probe.stub.Reset, pb.ResetRequest(session_id=opened.session_id))
        except grpc.RpcError as err:
            if err.code() == CODE.NOT_FOUND:
                return "the stream's session is NOT_FOUND once the stream ends"
            raise CheckFailed(f"expected NOT_FOUND, got {err.code().name}") from None
        if time.monotonic() > deadline:
            raise CheckFailed("the stream's session was still open 5 s after the stream ended")
        time.sleep(0.1)


def close_session(probe: Probe) -> str:
    session_id, _ = probe.open()
    probe.close(session_id)
    with probe.expect_status(CODE.NOT_FOUND, "Reset of a closed session"):
        probe.reset(session_id)
    with probe.expect_status(CODE.NOT_FOUND, "CloseSession of a closed session"):
        probe.call(probe.stub.CloseSession, pb.CloseSessionRequest(session_id=session_id))
    return "a closed session is NOT_FOUND"
