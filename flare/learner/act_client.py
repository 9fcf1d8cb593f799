"""ActClient: a Python simulator's loop plays as an agent of a running learner.

The simulator keeps its loop; each step it sends what it observes (and how the last
actions did) and gets the next actions::

    with ActClient("127.0.0.1:50051", env.spec(), name="my-sim") as client:
        actions = client.start(env.reset())
        while True:
            observations, rewards, game_over = env.step(actions)
            actions = client.step(observations, rewards, game_over, env.time_out())
            if actions is None:  # the episode ended (and was recorded as a game)
                actions = client.start(env.reset())

The learner ends the stream when the run needs no more of this agent's games: the next
call raises ``RunComplete``. ``drive(env, address)`` is that loop for any flare Env.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import numpy as np

from flare.bridge.codec import decode, encode_into
from flare.bridge.security import bearer, check_token_channel, open_channel
from flare.bridge.specs import spec_to_proto
from flare.bridge.stream import QueuedStream, StreamClosed
from flare.framework.env import Env
from flare.framework.env_spec import EnvSpec
from flare.learner.client import LearnerError
from flare.learner.v1 import learner_pb2 as pb
from flare.learner.v1 import learner_pb2_grpc as pb_grpc

# Frames can be big; the learner takes up to 64 MiB a message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class RunComplete(Exception):  # noqa: N818 - not an error: the learner is done with us
    """The learner ended the stream: the run needs no more of this agent's games."""


@dataclass(frozen=True)
class Opened:
    """What the learner said when the stream opened."""

    agent: int
    run_name: str
    policy_version: int


class ActClient:
    """One Act stream to a learner (see the module's docstring).

    Args:
        address: ``host:port`` of the learner.
        spec: what the simulator sends and takes (the learner refuses a spec its models
            cannot read: ``LearnerError`` INVALID_ARGUMENT).
        name: the simulator's label in the learner's log.
        tls_root_cert, token, insecure: as for ``LearnerClient``.
        timeout_s: the longest one step may wait for its actions (None: no limit; a
            checkpoint pauses the run for a moment, a first call waits for the run to
            start); past it the stream is cancelled and ``LearnerError``
            DEADLINE_EXCEEDED is raised.

    Every failure is a ``LearnerError`` with the learner's status code and message.
    """

    def __init__(
        self,
        address: str,
        spec: EnvSpec,
        name: str = "",
        tls_root_cert: str | Path | None = None,
        token: str | None = None,
        insecure: bool = False,
        timeout_s: float | None = 60.0,
    ) -> None:
        check_token_channel(address, token, tls=tls_root_cert is not None, insecure=insecure)
        self.address = address
        self.spec = spec
        self.timeout_s = timeout_s
        self._reward_names = tuple(spec.reward_names)
        self._observation_dtypes = {s.name: np.dtype(s.dtype) for s in spec.observations}
        self._channel = open_channel(
            address,
            tls_root_cert,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        stub = pb_grpc.LearnerStub(self._channel)
        metadata = bearer(token) if token else ()
        self._stream = QueuedStream(
            lambda requests: stub.Act(requests, metadata=metadata, wait_for_ready=True),
            timeout_s,
        )
        self.policy_version = 0
        self.finished = False
        try:
            config = {"name": name} if name else {}
            opened = self._exchange(
                pb.ActRequest(
                    open=pb.ActOpen(
                        protocol_version=pb.ACT_PROTOCOL_VERSION_1,
                        spec=spec_to_proto(spec),
                        config=config,
                    )
                )
            ).opened
        except BaseException:
            self.close()
            raise
        self.opened = Opened(opened.agent, opened.run_name, opened.policy_version)
        self.policy_version = opened.policy_version

    @property
    def agent(self) -> int:
        """The run's agent this stream plays as."""
        return self.opened.agent

    def start(self, observations: Mapping[str, object]) -> dict[str, np.ndarray]:
        """An episode's first observations; the actions to take."""
        actions = self._step(pb.ActStep(), observations)
        assert actions is not None  # (a first step never ends an episode)
        return actions

    def new_episode(self, observations: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Cut the episode in play short (interrupted, not a game over) and start one."""
        actions = self._step(pb.ActStep(new_episode=True), observations)
        assert actions is not None
        return actions

    def step(
        self,
        observations: Mapping[str, object],
        rewards: Mapping[str, object],
        game_over: int = 0,
        time_out: bool = False,
    ) -> dict[str, np.ndarray] | None:
        """The observations after the last actions, their rewards and whether they ended
        the episode (``game_over`` 1 success, -1 failure; ``time_out``: its step limit).
        The next actions, or None when the episode ended."""
        message = pb.ActStep(game_over=int(game_over), time_out=bool(time_out))
        for name in self._reward_names:
            value = np.asarray(rewards[name], dtype=np.float32).reshape(-1)
            encode_into(message.rewards[name], value, f"rewards[{name!r}]")
        return self._step(message, observations)

    def _step(
        self, message: pb.ActStep, observations: Mapping[str, object]
    ) -> dict[str, np.ndarray] | None:
        for name, dtype in self._observation_dtypes.items():
            array = np.asarray(observations[name])
            if dtype != np.dtype(object):
                array = array.astype(dtype, copy=False)
            encode_into(message.observations[name], array, f"observations[{name!r}]")
        reply = self._exchange(pb.ActRequest(step=message)).actions
        self.policy_version = reply.policy_version
        if reply.episode_over:
            return None
        return {k: decode(v, f"actions[{k!r}]") for k, v in reply.actions.items()}

    def _exchange(self, request: pb.ActRequest) -> pb.ActReply:
        if self.finished:
            raise RunComplete("the learner ended this stream")
        try:
            return self._stream.exchange(request)
        except StreamClosed:
            self.finished = True
            raise RunComplete("the learner ended the stream: the run needs no more games") from None
        except grpc.RpcError as err:
            if self._stream.timed_out:
                raise LearnerError(grpc.StatusCode.DEADLINE_EXCEEDED, self._stream.late) from None
            raise LearnerError.from_rpc_error(err) from None

    def close(self) -> None:
        """End the stream (an episode in play is interrupted, not a game over)."""
        self._stream.close()
        self._channel.close()

    def __enter__(self) -> ActClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def drive(
    env: Env,
    address: str,
    name: str = "",
    max_games: int | None = None,
    token: str | None = None,
    tls_root_cert: str | Path | None = None,
    timeout_s: float | None = 60.0,
) -> int:
    """Play ``env`` as an agent of the learner at ``address`` until the learner ends the
    stream (or ``max_games`` games are played); returns the games played. The loop a
    simulator in any language writes, for a flare Env."""
    games = 0
    client = ActClient(
        address, env.spec(), name, tls_root_cert=tls_root_cert, token=token, timeout_s=timeout_s
    )
    with client:
        try:
            actions = client.start(env.reset())
            while max_games is None or games < max_games:
                observations, rewards, game_over = env.step(actions)
                next_actions = client.step(observations, rewards, game_over, env.time_out())
                if next_actions is None:
                    games += 1
                    if max_games is not None and games >= max_games:
                        break
                    next_actions = client.start(env.reset())
                actions = next_actions
        except RunComplete:
            pass
    return games
