"""The Act contract's checks, run against a live learner (``flare check-learner``).

Each check takes a ``LearnerProbe``, returns what it saw when the learner complies and
raises ``CheckFailed`` when it does not. Every refusal must come with its exact code and
a message naming the field, and the learner must still answer afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import grpc
import numpy as np
from grpc_health.v1 import health_pb2

from flare.bridge.codec import decode, encode
from flare.compliance.act_probe import LearnerProbe, RawActStream, StreamEndedOK, step_message
from flare.compliance.checks.base import Check
from flare.compliance.probe import CheckFailed, expect_status
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec, Language
from flare.learner.v1 import SERVICE_NAME
from flare.learner.v1 import learner_pb2 as pb
from flare.simulator.v1 import simulator_pb2 as sim_pb

CODE = grpc.StatusCode


LearnerCheck = Check[LearnerProbe]


# ----- what the checks share -----------------------------------------------------------------
def run_spec(probe: LearnerProbe) -> EnvSpec:
    spec, streams = probe.act_spec()
    if spec is None or streams < 1:
        raise CheckFailed("the run takes no Act streams (GetActSpec: act_streams_max 0)")
    return spec


@contextmanager
def expect(code: grpc.StatusCode, what: str, names: str = "") -> Iterator[None]:
    """The block must fail with exactly ``code``, its message naming ``names``; an Act
    stream that ends with OK instead fails the check."""
    try:
        with expect_status(code, what, names):
            yield
    except StreamEndedOK:
        raise CheckFailed(f"{what}: expected {code.name}, the stream ended with OK") from None


def still_serves(probe: LearnerProbe, what: str) -> None:
    try:
        probe.status()
    except grpc.RpcError as err:
        raise CheckFailed(f"after {what}, GetStatus failed: {err.code().name}") from None


def playing(probe: LearnerProbe, spec: EnvSpec, steps: int = 2) -> RawActStream:
    """A stream opened with ``spec`` that has played ``steps`` steps of one episode."""
    rng = np.random.default_rng(0)
    stream = probe.stream()
    stream.open(spec, config={"name": "check-learner"})
    stream.step(step_message(spec, rng, rewards=False))
    for _ in range(steps - 1):
        stream.step(step_message(spec, rng))
    return stream


def check_actions(spec: EnvSpec, reply: pb.ActActions, what: str) -> None:
    """The reply's actions are exactly the spec's, each of its dtype, shape and range."""
    names = sorted(reply.actions)
    if names != sorted(s.name for s in spec.actions):
        raise CheckFailed(
            f"{what}: actions {names}, the spec's are {[s.name for s in spec.actions]}"
        )
    for action in spec.actions:
        array = decode(reply.actions[action.name], f"actions[{action.name!r}]")
        if array.shape != tuple(action.shape) or array.dtype != np.dtype(action.dtype):
            raise CheckFailed(
                f"{what}: action {action.name!r} is {array.dtype} {list(array.shape)}, the "
                f"spec says {np.dtype(action.dtype)} {list(action.shape)}"
            )
        limit = _limit(action)
        if limit is not None and array.size and not ((array >= 0) & (array < limit)).all():
            raise CheckFailed(f"{what}: action {action.name!r} is outside 0..{limit - 1}")


def _limit(spec: ArraySpec) -> int | None:
    if isinstance(spec.kind, Discrete):
        return spec.kind.num_values
    if isinstance(spec.kind, Language):
        return spec.kind.vocabulary_size
    return None


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ----- the checks ----------------------------------------------------------------------------
def health(probe: LearnerProbe) -> str:
    for service in ("", SERVICE_NAME):
        answer = probe.health.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=probe.target.timeout_s
        )
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise CheckFailed(f"health of {service!r}: {answer.status}, expected SERVING")
    return "SERVING for '' and the Learner service"


def act_spec(probe: LearnerProbe) -> str:
    spec, streams = probe.act_spec()
    if spec is None or streams < 1:
        raise CheckFailed("GetActSpec: the run takes no Act streams (act_streams_max 0)")
    if not spec.observations or not spec.reward_names:
        raise CheckFailed("GetActSpec: the spec has no observations or no reward names")
    return f"{len(spec.observations)} observations, {len(spec.actions)} actions, {streams} streams"


def play(probe: LearnerProbe) -> str:
    spec = run_spec(probe)
    rng = np.random.default_rng(1)
    stream = probe.stream()
    opened = stream.open(spec)
    if opened.protocol_version != pb.ACT_PROTOCOL_VERSION_1 or opened.agent < 0:
        raise CheckFailed(f"open: answered {opened}")
    check_actions(spec, stream.step(step_message(spec, rng, rewards=False)), "first step")
    for i in range(3):
        check_actions(spec, stream.step(step_message(spec, rng)), f"step {i + 1}")
    ended = stream.step(step_message(spec, rng, game_over=1))
    if not ended.episode_over or ended.actions:
        raise CheckFailed("a step with game_over 1 was not answered episode_over, no actions")
    check_actions(spec, stream.step(step_message(spec, rng, rewards=False)), "the next episode")
    stream.close()
    return f"agent {opened.agent} played 5 steps and an episode's end"


def protocol_version(probe: LearnerProbe) -> str:
    spec = run_spec(probe)
    for version in (0, 2):
        stream = probe.stream()
        with expect(CODE.FAILED_PRECONDITION, f"protocol_version {version}", "protocol_version"):
            stream.open(spec, version=version)
    still_serves(probe, "a refused protocol version")
    return "versions 0 and 2: FAILED_PRECONDITION"


def stream_order(probe: LearnerProbe) -> str:
    spec = run_spec(probe)
    rng = np.random.default_rng(2)
    stream = probe.stream()
    with expect(CODE.FAILED_PRECONDITION, "a first message that is a step", "open"):
        stream.send(pb.ActRequest(step=step_message(spec, rng, rewards=False)))
    stream = playing(probe, spec)
    with expect(CODE.FAILED_PRECONDITION, "a second open", "open"):
        stream.open(spec)
    stream = playing(probe, spec)
    with expect(CODE.INVALID_ARGUMENT, "a message with nothing set", "request"):
        stream.send(pb.ActRequest())
    still_serves(probe, "messages out of order")
    return "step first and a second open: FAILED_PRECONDITION; an empty one: INVALID_ARGUMENT"


def _refused_specs(spec: EnvSpec) -> list[tuple[str, EnvSpec, str]]:
    first_action = spec.actions[0] if spec.actions else None
    cases = []
    if first_action is not None:
        cases.append(("no actions", replace(spec, actions=()), "spec.actions"))
        other = ArraySpec(first_action.name, np.dtype("float64"), first_action.shape)
        cases.append(
            (
                "an action of another dtype",
                replace(spec, actions=(other, *spec.actions[1:])),
                "spec.actions[0]",
            )
        )  # noqa: E501
    extra = ArraySpec("check_learner_extra", np.dtype("int64"), (1,), Discrete(2))
    cases.append(("an extra action", replace(spec, actions=(*spec.actions, extra)), "spec.actions"))
    obs = spec.observations[0]
    bigger = ArraySpec(obs.name, obs.dtype, (*obs.shape, 2), obs.kind)
    cases.append(
        (
            "an observation of another shape",
            replace(spec, observations=(bigger, *spec.observations[1:])),
            "spec",
        )
    )  # noqa: E501
    cases.append(
        (
            "other reward names",
            replace(spec, reward_names=("check_learner_reward",)),
            "spec.reward_names",
        )
    )  # noqa: E501
    return cases


def spec_refused(probe: LearnerProbe) -> str:
    spec = run_spec(probe)
    cases = _refused_specs(spec)
    for what, bad, names in cases:
        stream = probe.stream()
        with expect(CODE.INVALID_ARGUMENT, f"a spec with {what}", names):
            stream.open(bad)
    stream = probe.stream()
    with expect(CODE.INVALID_ARGUMENT, "an unknown config key", "config"):
        stream.open(spec, config={"check_learner_key": "1"})
    still_serves(probe, "refused specs")
    return f"{len(cases) + 1} bad opens: INVALID_ARGUMENT naming the field"


def _bad_steps(spec: EnvSpec) -> list[tuple[str, Callable[[pb.ActStep], object], str]]:
    obs = spec.observations[0]
    other = np.float64 if np.dtype(obs.dtype) != np.dtype(np.float64) else np.float32
    reward = spec.reward_names[0]
    return [
        (
            "a wrong dtype",
            lambda m: m.observations[obs.name].CopyFrom(encode(np.zeros(obs.shape, other))),
            f"observations[{obs.name!r}]",
        ),  # noqa: E501
        (
            "a wrong shape",
            lambda m: m.observations[obs.name].CopyFrom(
                encode(np.zeros((*obs.shape, 2), obs.dtype))
            ),
            f"observations[{obs.name!r}]",
        ),  # noqa: E501
        (
            "malformed bytes",
            lambda m: m.observations[obs.name].CopyFrom(
                sim_pb.Tensor(
                    dtype=m.observations[obs.name].dtype, shape=list(obs.shape), data=b"\x00" * 3
                )
            ),
            f"observations[{obs.name!r}]",
        ),  # noqa: E501
        (
            "an unknown observation",
            lambda m: m.observations["check_learner_obs"].CopyFrom(encode(np.zeros(1, np.float32))),
            "check_learner_obs",
        ),  # noqa: E501
        ("a missing observation", lambda m: m.observations.pop(obs.name), obs.name),
        ("a missing reward", lambda m: m.rewards.pop(reward), reward),
        (
            "a float64 reward",
            lambda m: m.rewards[reward].CopyFrom(encode(np.zeros(1, np.float64))),
            f"rewards[{reward!r}]",
        ),  # noqa: E501
        ("game_over 2", lambda m: setattr(m, "game_over", 2), "game_over"),
        (
            "game_over with time_out",
            _both_endings,
            "game_over",
        ),  # noqa: E501
    ]


def _both_endings(message: pb.ActStep) -> None:
    message.game_over, message.time_out = 1, True


def bad_steps(probe: LearnerProbe) -> str:
    spec = run_spec(probe)
    rng = np.random.default_rng(3)
    cases = _bad_steps(spec)
    for what, edit, names in cases:
        stream = playing(probe, spec)
        message = step_message(spec, rng)
        edit(message)
        with expect(CODE.INVALID_ARGUMENT, f"a step with {what}", names):
            stream.step(message)
    stream = probe.stream()
    stream.open(spec)
    with expect(CODE.INVALID_ARGUMENT, "rewards on an episode's first step", "first step"):
        stream.step(step_message(spec, rng, rewards=True))
    still_serves(probe, "bad steps")
    return f"{len(cases) + 1} bad steps: INVALID_ARGUMENT naming the field"


def interrupted_stream(probe: LearnerProbe) -> str:
    spec = run_spec(probe)
    before = probe.status().interrupted_games
    stream = playing(probe, spec, steps=3)
    stream.close()
    if not _wait_for(lambda: probe.status().interrupted_games > before, probe.target.timeout_s):
        raise CheckFailed("a stream closed mid-episode was not counted as an interrupted game")
    rng = np.random.default_rng(4)
    stream = playing(probe, spec, steps=3)
    before = probe.status().interrupted_games
    restart = step_message(spec, rng, rewards=False)
    restart.new_episode = True
    check_actions(spec, stream.step(restart), "a new_episode step")
    if not _wait_for(lambda: probe.status().interrupted_games > before, probe.target.timeout_s):
        raise CheckFailed("a new_episode step did not interrupt the episode in play")
    stream.close()
    return "a closed stream and a new_episode step each interrupt their episode"


def quota(probe: LearnerProbe) -> str:
    spec, most = probe.act_spec()
    if spec is None or most < 1:
        raise CheckFailed("the run takes no Act streams")
    opened: list[RawActStream] = []
    for _ in range(most):
        stream = probe.stream()
        try:
            stream.open(spec)
        except grpc.RpcError as err:
            if err.code() != CODE.RESOURCE_EXHAUSTED:
                raise CheckFailed(f"opening stream {len(opened) + 1}: {err.code().name}") from None
            break  # (other simulators hold the other slots)
        opened.append(stream)
    if not opened:
        raise CheckFailed("no stream could open: every slot is taken; run on a quiet learner")
    with expect(CODE.RESOURCE_EXHAUSTED, f"stream {len(opened) + 1} of {most}"):
        probe.stream().open(spec)
    opened[0].close()
    again = probe.stream()
    deadline = time.monotonic() + probe.target.timeout_s
    while True:
        try:
            again.open(spec)
            break
        except grpc.RpcError as err:
            if err.code() != CODE.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise CheckFailed(f"a freed slot did not open: {err.code().name}") from None
            again = probe.stream()
            time.sleep(0.05)
    for stream in (*opened, again):
        stream.close()
    return f"{len(opened)} streams opened, one more RESOURCE_EXHAUSTED, a freed slot reopened"


LEARNER_CHECKS: tuple[LearnerCheck, ...] = (
    LearnerCheck("health", "the health service answers SERVING", health),
    LearnerCheck("act_spec", "GetActSpec gives the run's spec and its quota", act_spec),
    LearnerCheck("play", "a stream plays: actions of the spec, episode ends acknowledged", play),
    LearnerCheck("protocol_version", "another protocol version is refused", protocol_version),
    LearnerCheck(
        "stream_order", "open comes first, once; a message has something set", stream_order
    ),  # noqa: E501
    LearnerCheck(
        "spec_refused", "a spec the run's models cannot read is refused at open", spec_refused
    ),  # noqa: E501
    LearnerCheck("bad_steps", "a bad observation, reward or ending ends the stream", bad_steps),
    LearnerCheck(
        "interrupted_stream", "a broken stream interrupts its episode", interrupted_stream
    ),  # noqa: E501
    LearnerCheck("quota", "one stream more than the run takes is refused", quota),
)
