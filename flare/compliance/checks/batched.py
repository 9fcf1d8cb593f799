"""Checks of the batched calls: StepMany equals Step row by row, is all or nothing for the
client's mistakes, and StepManyStream equals StepMany message by message."""

from __future__ import annotations

import grpc
import numpy as np

from flare.bridge.codec import decode
from flare.compliance.checks.base import (
    CODE,
    error_of,
    row_of,
    same_observations,
    same_step,
    step_many_request,
    twins,
    twins_apart,
)
from flare.compliance.probe import CheckFailed, Probe, action_plan, decoded, valid_actions
from flare.simulator.v1 import simulator_pb2 as pb


def step_many(probe: Probe, rows: int = 3, max_steps: int = 200) -> str:
    """Batched sessions against twins stepped one by one, until an auto-reset was seen."""
    batched = [probe.open(seed=300 + i) for i in range(rows)]
    single = [probe.open(seed=300 + i) for i in range(rows)]
    spec = batched[0][1]
    for session_id, _ in batched + single:
        probe.reset(session_id)
    rng = np.random.default_rng(3)
    resets = 0
    for t in range(max_steps):
        actions = [valid_actions(spec, rng) for _ in range(rows)]
        request = step_many_request([s for s, _ in batched], actions, auto_reset=True)
        answer = probe.call(probe.stub.StepMany, request)
        reset_rows = list(answer.reset_rows)
        if reset_rows != sorted(set(reset_rows)):
            raise CheckFailed(f"reset_rows {reset_rows} are not increasing")
        finals = decoded(answer.final_observations)
        for row, (session_id, _) in enumerate(single):
            alone = probe.step(session_id, actions[row])
            got = row_of(answer, row)
            if alone.ended != (row in reset_rows):
                raise CheckFailed(f"step {t}: row {row} ended alone but not batched, or back")
            first = got.observations
            if row in reset_rows:  # the row holds the new episode; the end is in finals
                got.observations = {k: v[reset_rows.index(row)] for k, v in finals.items()}
                if not same_observations(first, probe.reset(session_id)):
                    raise CheckFailed(f"step {t}: row {row} is not its new episode's start")
            if not same_step(got, alone):
                raise CheckFailed(f"step {t}: StepMany row {row} differs from Step")
        resets += len(reset_rows)
        if resets and t >= 9:
            return f"StepMany over {rows} sessions equals Step on each, {resets} auto-resets"
    raise CheckFailed(f"no episode ended in {max_steps} StepMany calls with auto_reset")


def step_many_atomic(probe: Probe) -> str:
    """A refused StepMany steps no row: with its last row never reset (FAILED_PRECONDITION
    naming that row, with auto_reset too, which resets only episodes that end in the call),
    with no ids or a repeated id (INVALID_ARGUMENT). Row 0's session is watched by a twin
    of its seed: after each refused call both step alike, and must stay together."""
    stepped, twin, spec = twins(probe, seed=500)
    other, _ = probe.open(seed=501)
    probe.reset(other)
    never, _ = probe.open(seed=502)  # (never reset)
    rng = np.random.default_rng(5)
    plan = action_plan(spec, seed=5, length=3)

    def refused(ids: list[str], code: grpc.StatusCode, what: str, auto_reset: bool = False) -> str:
        """The call must fail with ``code`` and leave row 0 unmoved; its details."""
        actions = [valid_actions(spec, rng) for _ in ids]
        request = step_many_request(ids, actions, auto_reset=auto_reset)
        err = error_of(lambda: probe.call(probe.stub.StepMany, request))
        if err is None:
            raise CheckFailed(f"{what}: expected {code.name}, but the call succeeded")
        if err.code() != code:
            raise CheckFailed(
                f"{what}: expected {code.name}, got {err.code().name} ({err.details()})"
            )
        apart = twins_apart(probe, stepped, twin, plan)
        if apart is not None:
            raise CheckFailed(
                f"{what} was refused, yet it stepped row 0: the session and its twin of one "
                f"seed part after it ({apart}); a refused StepMany steps no session"
            )
        return err.details() or ""

    ids = [stepped, other, never]
    for auto_reset in (False, True):
        what = f"StepMany{' with auto_reset' if auto_reset else ''} whose last row was never reset"
        details = refused(ids, CODE.FAILED_PRECONDITION, what, auto_reset)
        if "session_ids[2]" not in details:
            raise CheckFailed(
                f"{what}: the message must name the row (session_ids[2]): {details!r}"
            )
    refused([stepped, other, stepped], CODE.INVALID_ARGUMENT, "StepMany with a repeated id")
    refused([], CODE.INVALID_ARGUMENT, "StepMany with no ids")
    return (
        "a never-reset last row is FAILED_PRECONDITION naming it (auto_reset too), no ids and "
        "a repeated id INVALID_ARGUMENT; row 0 stepped in none (its twin agrees)"
    )


def step_many_stream(probe: Probe, rows: int = 3, messages: int = 4) -> str:
    """StepManyStream answers each message as StepMany answers twin sessions (same seeds,
    same actions); the stream does not own its sessions, so they stay open when it ends,
    cleanly or with an error; a bad message ends the stream with its own status."""
    pairs = [twins(probe, seed=600 + i) for i in range(rows)]
    spec = pairs[0][2]
    streamed, unary = [p[0] for p in pairs], [p[1] for p in pairs]
    rng = np.random.default_rng(6)
    plan = [[valid_actions(spec, rng) for _ in range(rows)] for _ in range(2 * messages)]
    options = {"timeout": probe.target.timeout_s, "metadata": probe.metadata}

    def compare(t: int, answer: pb.StepManyResponse, actions: list[dict]) -> None:
        alone = probe.call(probe.stub.StepMany, step_many_request(unary, actions, auto_reset=True))
        apart = _apart(answer, alone)
        if apart is not None:
            raise CheckFailed(f"StepManyStream message {t}: {apart} differ from StepMany's")

    first = [step_many_request(streamed, a, auto_reset=True) for a in plan[:messages]]
    answers = list(probe.stub.StepManyStream(iter(first), **options))
    if len(answers) != len(first):
        raise CheckFailed(f"StepManyStream answered {len(answers)} of {len(first)} messages")
    for t, answer in enumerate(answers):
        compare(t, answer, plan[t])
    for row, session_id in enumerate(streamed):
        try:
            probe.call(probe.stub.GetSpec, pb.GetSpecRequest(session_id=session_id))
        except grpc.RpcError as gone:
            raise CheckFailed(
                f"once a StepManyStream ended, session_ids[{row}] is {gone.code().name}; the "
                "stream does not own its sessions, they stay open"
            ) from None

    # the same sessions on a second stream (so the first left them open), then a bad message
    good = [step_many_request(streamed, a, auto_reset=True) for a in plan[messages:]]
    bad = step_many_request([*streamed[:-1], "no-such-session"], plan[-1], auto_reset=True)
    second = [*good[:-2], bad, good[-1]]
    seen: list[pb.StepManyResponse] = []
    err = error_of(lambda: seen.extend(probe.stub.StepManyStream(iter(second), **options)))
    if err is None or err.code() != CODE.NOT_FOUND:
        got = "it ended OK" if err is None else f"{err.code().name} ({err.details()})"
        raise CheckFailed(
            f"a StepManyStream message with an unknown session must end the stream with "
            f"NOT_FOUND; {got}"
        )
    if len(seen) != len(good) - 2:
        raise CheckFailed(f"the stream answered {len(seen)} messages before the bad one")
    for t, answer in enumerate(seen):
        compare(messages + t, answer, plan[messages + t])
    try:  # still open, and not moved by the bad message: they step on as their twins
        after = probe.call(
            probe.stub.StepMany, step_many_request(streamed, plan[-1], auto_reset=True)
        )
    except grpc.RpcError as gone:
        raise CheckFailed(
            f"after the stream ended, its sessions are {gone.code().name} ({gone.details()}); "
            "a StepManyStream does not own its sessions"
        ) from None
    compare(len(plan), after, plan[-1])
    return (
        f"{len(answers) + len(seen)} streamed messages over {rows} sessions equal StepMany; "
        "an unknown session ends the stream NOT_FOUND; the sessions stay open"
    )


def _apart(x: pb.StepManyResponse, y: pb.StepManyResponse) -> str | None:
    """What two StepMany answers differ in (None when they agree)."""
    if not same_observations(decoded(x.observations), decoded(y.observations)):
        return "observations"
    xr, yr = decoded(x.rewards), decoded(y.rewards)
    if xr.keys() != yr.keys() or not all(
        xr[k].shape == yr[k].shape and np.allclose(xr[k], yr[k]) for k in xr
    ):
        return "rewards"
    if not np.array_equal(decode(x.game_over), decode(y.game_over)):
        return "game_over"
    if not np.array_equal(decode(x.time_out), decode(y.time_out)):
        return "time_out"
    if list(x.reset_rows) != list(y.reset_rows):
        return "reset_rows"
    if not same_observations(decoded(x.final_observations), decoded(y.final_observations)):
        return "final_observations"
    return None
