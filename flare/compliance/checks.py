"""The contract, one check per function: each takes a ``Probe``, returns what it saw
when the simulator complies, and raises ``CheckFailed`` (why) when it does not."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np
from grpc_health.v1 import health_pb2

from flare.bridge.codec import decode, encode
from flare.bridge.specs import spec_from_proto
from flare.compliance.probe import (
    CheckFailed,
    CheckSkipped,
    Probe,
    Step,
    action_plan,
    decoded,
    valid_actions,
)
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb

CODE = grpc.StatusCode
SERVICE = SERVICE_NAME


@dataclass(frozen=True)
class Check:
    """One rule of the contract."""

    name: str
    rule: str
    run: Callable[[Probe], str]

    def __str__(self) -> str:  # (pytest ids)
        return self.name


# ----- the server as a whole --------------------------------------------------------------
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
    request.protocol_version = 999
    with probe.expect_status(CODE.FAILED_PRECONDITION, "OpenSession with protocol_version 999"):
        probe.call(probe.stub.OpenSession, request)
    return "version 999 refused with FAILED_PRECONDITION"


# ----- the spec ---------------------------------------------------------------------------
def spec_well_formed(probe: Probe) -> str:
    session_id, spec = probe.open()
    problems = _spec_problems(spec)
    if problems:
        raise CheckFailed("; ".join(problems))
    again = spec_from_proto(
        probe.call(probe.stub.GetSpec, pb.GetSpecRequest(session_id=session_id)).spec
    )
    if again != spec:
        raise CheckFailed("GetSpec returns another spec than OpenSession")
    return (
        f"observations {[s.name for s in spec.observations]}, "
        f"actions {[s.name for s in spec.actions]}, rewards {list(spec.reward_names)}"
    )


def _spec_problems(spec: EnvSpec) -> list[str]:
    problems = []
    for group, arrays in (("observation", spec.observations), ("action", spec.actions)):
        if not arrays:
            problems.append(f"no {group}s")
        names = [a.name for a in arrays]
        if len(set(names)) != len(names) or not all(names):
            problems.append(f"{group} names must be unique and non-empty: {names}")
        problems.extend(p for a in arrays for p in _array_problems(group, a))
    if not spec.reward_names or len(set(spec.reward_names)) != len(spec.reward_names):
        problems.append(f"reward names must be unique and non-empty: {spec.reward_names}")
    if spec.max_episode_steps < 0:
        problems.append(f"max_episode_steps {spec.max_episode_steps} < 0")
    return problems


def _array_problems(group: str, spec: ArraySpec) -> list[str]:
    where = f"{group} {spec.name!r}"
    problems = (
        [f"{where}: negative dimension in {spec.shape}"] if min(spec.shape, default=0) < 0 else []
    )
    kind = spec.kind
    integral = spec.dtype.kind in "iu"
    if isinstance(kind, Discrete) and (kind.num_values < 1 or not integral):
        problems.append(f"{where}: discrete needs an integer dtype and >= 1 values")
    if isinstance(kind, Language) and (kind.vocabulary_size < 1 or not integral):
        problems.append(f"{where}: language needs an integer dtype and a vocabulary >= 1")
    if isinstance(kind, Continuous):
        size = math.prod(spec.shape)
        if len(kind.low) != size or len(kind.high) != size:
            problems.append(f"{where}: bounds need {size} values each")
        elif any(lo > hi for lo, hi in zip(kind.low, kind.high, strict=True)):
            problems.append(f"{where}: a low bound is above its high bound")
    return problems


def observations_match_spec(probe: Probe) -> str:
    session_id, spec = probe.open(seed=0)
    _check_observations("reset", probe.reset(session_id), spec)
    step = probe.step(session_id, valid_actions(spec, np.random.default_rng(0)))
    _check_observations("step", step.observations, spec)
    if set(step.rewards) != set(spec.reward_names):
        raise CheckFailed(f"step rewards {sorted(step.rewards)}, spec {list(spec.reward_names)}")
    for name, reward in step.rewards.items():
        if reward.dtype != np.float32 or reward.ndim != 1:
            raise CheckFailed(f"reward {name!r} is {reward.dtype} {reward.shape}, not float32 [n]")
    if step.game_over not in (-1, 0, 1):
        raise CheckFailed(f"game_over {step.game_over} is not -1, 0 or 1")
    return "reset and step answer every name of the spec with its dtype and shape"


def _check_observations(when: str, observations: dict[str, np.ndarray], spec: EnvSpec) -> None:
    wanted = {s.name: s for s in spec.observations}
    if set(observations) != set(wanted):
        raise CheckFailed(f"{when}: observations {sorted(observations)}, spec {sorted(wanted)}")
    for name, array in observations.items():
        expected = wanted[name]
        if array.dtype != expected.dtype or array.shape != expected.shape:
            raise CheckFailed(
                f"{when}: observation {name!r} is {array.dtype} {array.shape}, "
                f"the spec says {expected.dtype} {expected.shape}"
            )


# ----- episodes ---------------------------------------------------------------------------
def reset_then_step(probe: Probe) -> str:
    session_id, spec = probe.open(seed=0)
    actions = valid_actions(spec, np.random.default_rng(0))
    with probe.expect_status(CODE.FAILED_PRECONDITION, "Step before Reset"):
        probe.step(session_id, actions)
    probe.reset(session_id)
    probe.step(session_id, actions)
    return "Step before Reset is FAILED_PRECONDITION; after Reset it steps"


def actrep(probe: Probe, attempts: int = 20) -> str:
    """actrep=3 against (up to) three single steps of a twin session, with an action
    whose repetition shows: its last step ends the episode or sees something the
    first did not, so a server that ignored actrep would be caught."""
    for attempt in range(attempts):
        repeated, spec = probe.open(seed=7 + attempt)
        single, _ = probe.open(seed=7 + attempt)
        probe.reset(repeated), probe.reset(single)
        actions = valid_actions(spec, np.random.default_rng(7 + attempt))
        steps = []
        for _ in range(3):
            steps.append(probe.step(single, actions))
            if steps[-1].ended:
                break
        first, last = steps[0], steps[-1]
        if first.ended or (
            last.ended == first.ended and _same_observations(first.observations, last.observations)
        ):
            continue  # nothing would tell actrep=3 from actrep=1: try another action
        once = probe.step(repeated, actions, actrep=3)
        if not _same_observations(once.observations, steps[-1].observations):
            raise CheckFailed("actrep=3 ends elsewhere than three single steps with one seed")
        for name in spec.reward_names:
            total = sum(float(s.rewards[name].sum()) for s in steps)
            if not np.isclose(float(once.rewards[name].sum()), total, rtol=1e-5, atol=1e-6):
                raise CheckFailed(f"actrep=3 reward {name!r} is not the sum of three steps'")
        if (once.game_over, once.time_out) != (steps[-1].game_over, steps[-1].time_out):
            raise CheckFailed("actrep=3 ends the episode differently from three single steps")
        fresh, _ = probe.open(seed=7)
        probe.reset(fresh)
        with probe.expect_status(CODE.INVALID_ARGUMENT, "Step with actrep=-1"):
            probe.step(fresh, actions, actrep=-1)
        return f"actrep=3 equals {len(steps)} single steps, rewards summed; actrep=-1 refused"
    raise CheckSkipped(f"no action in {attempts} tries moved the observation over three steps")


def seeded_reset(probe: Probe) -> str:
    first, spec = probe.open(seed=123)
    second, _ = probe.open(seed=123)
    plan = action_plan(spec, seed=1, length=30)
    a, b = _play(probe, first, plan), _play(probe, second, plan)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        if not _same_observations(x, y):
            raise CheckFailed(f"two sessions with seed 123 differ at observation {t}")
    return f"two sessions with one seed agree over {len(plan)} steps (with resets)"


def _play(probe: Probe, session_id: str, plan: list[dict]) -> list[dict[str, np.ndarray]]:
    """Reset, then follow the plan (resetting at episode ends); every observation."""
    seen = [probe.reset(session_id)]
    for actions in plan:
        step = probe.step(session_id, actions)
        seen.append(step.observations)
        if step.ended:
            seen.append(probe.reset(session_id))
    return seen


def _same_observations(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> bool:
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def episode_end(probe: Probe) -> str:
    session_id, spec = probe.open(seed=5)
    rng = np.random.default_rng(5)
    limit = spec.max_episode_steps
    ended, length, step = [], 0, None
    probe.reset(session_id)
    for _ in range(probe.target.episode_steps_probe):
        step = probe.step(session_id, valid_actions(spec, rng))
        length += 1
        if step.game_over not in (-1, 0, 1):
            raise CheckFailed(f"game_over {step.game_over} is not -1, 0 or 1")
        if step.game_over != 0 and step.time_out:
            raise CheckFailed("a step is both a game over and a time-out")
        if limit and length > limit:
            raise CheckFailed(f"an episode ran past max_episode_steps={limit}")
        if step.time_out and limit and length != limit:
            raise CheckFailed(f"time-out after {length} steps, max_episode_steps is {limit}")
        if step.ended:
            ended.append("time-out" if step.time_out else f"game over {step.game_over}")
            with probe.expect_status(CODE.FAILED_PRECONDITION, "Step after the episode ended"):
                probe.step(session_id, valid_actions(spec, rng))
            if len(ended) >= 10:
                break
            probe.reset(session_id)
            length = 0
    if not ended:
        raise CheckFailed(f"no episode ended within {probe.target.episode_steps_probe} steps")
    kinds = sorted(set(ended))
    return f"{len(ended)} episodes ended ({', '.join(kinds)}); stepping past an end refused"


# ----- bad input: exact status, and every other session unharmed --------------------------
def _bad_input(
    probe: Probe, code: grpc.StatusCode, what: str, make: Callable[[str, EnvSpec], object]
) -> str:
    """Send one bad request; a witness session must step on, unharmed, after it."""
    witness, spec = probe.open(seed=11)
    session_id, _ = probe.open(seed=12)
    probe.reset(witness), probe.reset(session_id)
    plan = action_plan(spec, seed=11, length=2)
    probe.step(witness, plan[0])
    send = make(session_id, spec)
    with probe.expect_status(code, what):
        send()
    try:
        probe.step(witness, plan[1])
    except grpc.RpcError as err:
        raise CheckFailed(
            f"after {what}, another session failed to step: {err.code().name} {err.details()}"
        ) from None
    return f"{what}: {code.name}, and another session steps on"


def _step_with(probe: Probe, session_id: str, tensors: dict[str, pb.Tensor]) -> Callable:
    request = pb.StepRequest(session_id=session_id)
    for name, tensor in tensors.items():
        request.actions[name].CopyFrom(tensor)
    return lambda: probe.call(probe.stub.Step, request)


def _valid_tensors(spec: EnvSpec) -> dict[str, pb.Tensor]:
    return {name: encode(a) for name, a in valid_actions(spec, np.random.default_rng(0)).items()}


def _bad_actions(
    probe: Probe, what: str, alter: Callable[[dict[str, pb.Tensor], EnvSpec], None]
) -> str:
    """A step whose valid actions ``alter`` spoils in place: INVALID_ARGUMENT."""

    def make(session_id: str, spec: EnvSpec) -> Callable:
        tensors = _valid_tensors(spec)
        alter(tensors, spec)
        return _step_with(probe, session_id, tensors)

    return _bad_input(probe, CODE.INVALID_ARGUMENT, what, make)


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


def out_of_range(probe: Probe) -> str:
    _, spec = probe.open()
    bounded = [a for a in spec.actions if isinstance(a.kind, Discrete | Language)]
    if not bounded:
        raise CheckSkipped("no discrete or language action")
    action, kind = bounded[0], bounded[0].kind
    limit = kind.num_values if isinstance(kind, Discrete) else kind.vocabulary_size

    def set_to(value: int) -> Callable[[dict[str, pb.Tensor], EnvSpec], None]:
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


def unknown_session(probe: Probe) -> str:
    def make(_, spec):
        return _step_with(probe, "no-such-session", _valid_tensors(spec))

    return _bad_input(probe, CODE.NOT_FOUND, "a step of an unknown session", make)


def too_many_sessions(probe: Probe) -> str:
    limit = probe.target.max_sessions_probe

    def make(_, __):
        def open_until_refused():
            for _ in range(limit):
                probe.open()
            raise CheckFailed(
                f"{limit} more sessions opened without RESOURCE_EXHAUSTED; a server must "
                "cap its sessions (raise --max-sessions-probe if its cap is higher)"
            )

        return open_until_refused

    return _bad_input(probe, CODE.RESOURCE_EXHAUSTED, "one session too many", make)


def message_too_large(probe: Probe) -> str:
    def make(session_id, spec):
        def grow_until_refused():
            size = 1 << 20
            while size <= probe.target.max_message_probe_mb << 20:
                tensors = _valid_tensors(spec)
                tensors["padding"] = encode(np.zeros(size, np.uint8))
                try:
                    _step_with(probe, session_id, tensors)()
                except grpc.RpcError as err:
                    if err.code() != CODE.INVALID_ARGUMENT:  # (padding is an unknown name)
                        raise
                size *= 2
            raise CheckFailed(
                f"a {probe.target.max_message_probe_mb} MiB message was not refused with "
                "RESOURCE_EXHAUSTED; a server must limit its message size"
            )

        return grow_until_refused

    return _bad_input(probe, CODE.RESOURCE_EXHAUSTED, "a message over the size limit", make)


# ----- sessions ---------------------------------------------------------------------------
def sessions_isolated(probe: Probe, workers: int = 4, steps: int = 40) -> str:
    sessions = [probe.open(seed=100 + i) for i in range(workers)]
    spec = sessions[0][1]
    plans = [action_plan(spec, seed=200 + i, length=steps) for i in range(workers)]
    together: list = [None] * workers
    errors: list[BaseException] = []

    def play(index: int) -> None:
        try:
            together[index] = _play(probe, sessions[index][0], plans[index])
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=play, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise CheckFailed(f"concurrent sessions failed: {errors[0]}")
    for index in range(workers):  # replay each alone, with the same seed and actions
        alone, _ = probe.open(seed=100 + index)
        replay = _play(probe, alone, plans[index])
        for t, (x, y) in enumerate(zip(together[index], replay, strict=True)):
            if not _same_observations(x, y):
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
        request = pb.StepManyRequest(session_ids=[s for s, _ in batched], auto_reset=True)
        for action in spec.actions:
            stacked = np.stack([a[action.name] for a in actions])
            request.actions[action.name].CopyFrom(encode(stacked))
        answer = probe.call(probe.stub.StepMany, request)
        reset_rows = list(answer.reset_rows)
        if reset_rows != sorted(set(reset_rows)):
            raise CheckFailed(f"reset_rows {reset_rows} are not increasing")
        finals = decoded(answer.final_observations)
        for row, (session_id, _) in enumerate(single):
            alone = probe.step(session_id, actions[row])
            got = _row(answer, row)
            if alone.ended != (row in reset_rows):
                raise CheckFailed(f"step {t}: row {row} ended alone but not batched, or back")
            first = got.observations
            if row in reset_rows:  # the row holds the new episode; the end is in finals
                got.observations = {k: v[reset_rows.index(row)] for k, v in finals.items()}
                if not _same_observations(first, probe.reset(session_id)):
                    raise CheckFailed(f"step {t}: row {row} is not its new episode's start")
            if not _same_step(got, alone):
                raise CheckFailed(f"step {t}: StepMany row {row} differs from Step")
        resets += len(reset_rows)
        if resets and t >= 9:
            return f"StepMany over {rows} sessions equals Step on each, {resets} auto-resets"
    raise CheckFailed(f"no episode ended in {max_steps} StepMany calls with auto_reset")


def _same_step(x: Step, y: Step) -> bool:
    return (
        _same_observations(x.observations, y.observations)
        and x.rewards.keys() == y.rewards.keys()
        and all(np.allclose(x.rewards[k], y.rewards[k]) for k in x.rewards)
        and (x.game_over, x.time_out) == (y.game_over, y.time_out)
    )


def _row(answer: pb.StepManyResponse, row: int) -> Step:
    observations = {k: v[row] for k, v in decoded(answer.observations).items()}
    rewards = {k: v[row] for k, v in decoded(answer.rewards).items()}
    game_over = decode(answer.game_over)[row]
    time_out = decode(answer.time_out)[row]
    return Step(observations, rewards, int(game_over), bool(time_out))


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
