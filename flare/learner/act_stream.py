"""One Act stream played as an agent of the run.

The agent keeps its plain episode loop (``Agent.play_session``) on an ``ActEnv``. The
loop runs in a greenlet of the stream's own gRPC thread: when the env needs the
simulator's next step, it hands the reply to send (the actions) to the stream's side,
which yields it to gRPC, reads the next request and switches back with it. No thread
hand-off per step, and the agent's CDP requests are plain pipe calls from that thread,
batched by the CDP with every other agent's.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import greenlet
import grpc
import numpy as np

from flare.bridge.codec import encode_into
from flare.bridge.errors import WireError, invalid, precondition
from flare.framework.agent import SessionEnded, StopRequested
from flare.framework.cdp_channel import CDPClosed
from flare.framework.env import ActionDict, Env, EnvInterrupted, ObservationDict, RewardDict
from flare.framework.env_spec import EnvSpec
from flare.framework.external_agents import ExternalSession
from flare.framework.reports import AgentFailed
from flare.learner.act_checks import ActStep, StepChecks
from flare.learner.v1 import learner_pb2 as pb

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEnd:
    """What the stream's side gives the agent instead of a step: the stream is over.
    ``error``: the status to end it with (a bad step), None when the client ended it."""

    reason: str
    error: WireError | None = None


@dataclass(frozen=True)
class SessionOutcome:
    """How the agent's session ended: the status the stream ends with."""

    code: grpc.StatusCode
    message: str


class ActEnv(Env):
    """An env whose steps come from an Act stream (see the module's docstring)."""

    def __init__(
        self,
        spec: EnvSpec,
        stream_side: greenlet.greenlet | None,
        policy_version: Callable[[], int],
        session: ExternalSession | None = None,
    ) -> None:
        self._spec = spec
        self._checks = StepChecks(spec)
        self._stream_side = stream_side
        self._policy_version = policy_version
        self._session = session
        self._action_specs = {s.name: s for s in spec.actions}
        self._in_episode = False
        self._ended = False  # the last step ended its episode: reset() acknowledges it
        self._time_out = False
        self._next_first: ActStep | None = None  # (a new_episode step cut the last one)
        self.error: WireError | None = None  # why the stream must end, if it broke a rule

    # ----- Env --------------------------------------------------------------------------
    def spec(self) -> EnvSpec:
        return self._spec

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return self._spec.observation_dims()

    def action_dims(self) -> dict[str, int]:
        return self._spec.action_dims()

    def time_out(self) -> bool:
        return self._time_out

    def reset(self) -> ObservationDict:
        step, self._next_first = self._next_first, None
        if step is None:
            step = self._next(self.finish(), first=True)
        if self._session is not None and not self._session.slots.begin_game():
            raise SessionEnded("the run's Act games are all played or begun", False)
        self._in_episode = True
        self._time_out = False
        return step.observations

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        # (actrep is the run's own agents' setting: a simulator steps at its own pace)
        step = self._next(self._actions_reply(actions), first=False)
        if step.new_episode:
            self._next_first = step
            self.cut_short()
            raise EnvInterrupted("the simulator started a new episode")
        self._time_out = step.time_out
        if step.game_over or step.time_out:
            self._ended = True
            self._in_episode = False
        return step.observations, step.rewards, step.game_over

    def cut_short(self) -> None:
        """The episode in play will not be a game: its game of the budget is free again."""
        if self._in_episode:
            self._in_episode = False
            if self._session is not None:
                self._session.slots.give_back_game()

    def finish(self) -> pb.ActReply | None:
        """The reply still owed to a step that ended its episode: sent before the next
        episode's first step, or as the stream's last message."""
        if not self._ended:
            return None
        self._ended = False
        return pb.ActReply(
            actions=pb.ActActions(policy_version=self._policy_version(), episode_over=True)
        )

    # ----- the stream -------------------------------------------------------------------
    def _actions_reply(self, actions: ActionDict) -> pb.ActReply:
        message = pb.ActActions(policy_version=self._policy_version())
        for name, spec in self._action_specs.items():
            array = np.asarray(actions[name])
            if spec.dtype != np.dtype(object):
                array = array.astype(spec.dtype, copy=False)
            if array.shape != spec.shape and array.size == int(np.prod(spec.shape)):
                array = array.reshape(spec.shape)
            encode_into(message.actions[name], array, f"actions[{name!r}]")
        return pb.ActReply(actions=message)

    def _next(self, reply: pb.ActReply | None, first: bool) -> ActStep:
        """Hand ``reply`` to the stream's side; the next step it read, decoded."""
        if self._stream_side is None:
            raise SessionEnded("no stream: this env only describes a spec", False)
        session = self._session
        if session is not None:
            session.await_stream()
        message = self._stream_side.switch(reply)
        if session is not None:
            session.stream_answered()  # (not while a checkpoint is being taken)
        if isinstance(message, StreamEnd):
            self.error = self.error or message.error
            mid_episode = self._in_episode
            self.cut_short()
            raise SessionEnded(message.reason, mid_episode)
        which = message.WhichOneof("request")
        try:
            if which == "open":
                raise precondition("open: the stream is already open")
            if which != "step":
                raise invalid("request: nothing set (give a step)")
            return self._checks.decode(message.step, first)
        except WireError as err:
            self.error = err
            mid_episode = self._in_episode
            self.cut_short()
            raise SessionEnded(f"a bad step: {err.message}", mid_episode) from None


def play_stream(
    session: ExternalSession,
    env_spec: EnvSpec,
    requests: Iterator[pb.ActRequest],
    policy_version: Callable[[], int],
) -> Iterator[pb.ActReply | SessionOutcome]:
    """The replies of one stream's session, then its outcome (last). ``requests`` is the
    stream's iterator, past its open."""
    agent, slots = session.agent, session.slots
    here = greenlet.getcurrent()
    env = ActEnv(env_spec, here, policy_version, session)
    outcome: list[SessionOutcome] = []

    def run() -> None:
        try:
            agent.play_session(env, slots.stop, slots.reports)
            if env.error is not None:
                outcome.append(SessionOutcome(env.error.code, env.error.message))
            else:
                outcome.append(SessionOutcome(grpc.StatusCode.OK, "the agent's games are played"))
        except (StopRequested, CDPClosed):
            outcome.append(SessionOutcome(grpc.StatusCode.OK, "the run is stopping"))
        except SessionEnded as ended:  # (can only come from reset/step outside the loop)
            outcome.append(SessionOutcome(grpc.StatusCode.CANCELLED, str(ended)))
        except BaseException:  # noqa: BLE001 - the learner's own failure: it fails the run
            text = traceback.format_exc()
            slots.reports.put(AgentFailed(agent.id, text))
            outcome.append(SessionOutcome(grpc.StatusCode.INTERNAL, "the learner failed"))

    player = greenlet.greenlet(run)
    handed = player.switch()
    try:
        while not player.dead:
            if handed is not None:
                yield handed
            try:
                message: object = next(requests)
            except StopIteration:
                message = StreamEnd("the simulator ended the stream")
            except grpc.RpcError:  # (the server's request iterator raises a bare one)
                message = StreamEnd("the stream broke")
            handed = player.switch(message)
        last = env.finish()
        if last is not None and outcome and outcome[0].code is grpc.StatusCode.OK:
            yield last
    finally:
        if not player.dead:  # (gRPC closed the generator: the client went away)
            player.switch(StreamEnd("the stream was cancelled"))
        env.cut_short()  # (an episode the run's stop left unfinished)
        session.close()
    yield outcome[0] if outcome else SessionOutcome(grpc.StatusCode.CANCELLED, "cancelled")
