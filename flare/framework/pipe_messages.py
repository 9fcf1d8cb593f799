"""The messages agents and CDPs exchange over their pipes.

An agent process sends one ``RequestBundle`` per CDP per round (the predictions of all
its waiting agents stacked, row blocks in agent order); the CDP answers with one
``ReplyBundle``. A stacked block stays stacked until the CDP builds its batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flare.framework.batch import ArrayDict, LearnBatch, concat_arrays, split_arrays


@dataclass
class PredictRequest:
    """One agent asking its CDP for actions: ``[1, ...]`` arrays by name."""

    inputs: ArrayDict
    states: ArrayDict


@dataclass
class PredictReply:
    """Actions go to the env; ``behavior`` (e.g. the behavior policy's log-probability) is
    stored with the step for learning and never sent to the env."""

    actions: ArrayDict
    states: ArrayDict
    behavior: ArrayDict = field(default_factory=dict)


@dataclass
class LearnRequest:
    batch: LearnBatch


@dataclass
class LearnReply:
    costs: ArrayDict


@dataclass
class AgentDone:
    """Sent for an agent to each of its CDPs when it stops, so batches stop waiting for it."""

    agent_id: int


Request = PredictRequest | LearnRequest
Reply = PredictReply | LearnReply


@dataclass
class PredictBatch:
    """The prediction requests of several agents of one process, stacked: one array per
    name (rows in ``agent_ids`` order, ``sizes`` rows each), so a pipe message costs the
    same for one agent or eight."""

    agent_ids: list[int]
    sizes: list[int]
    inputs: ArrayDict
    states: ArrayDict

    @classmethod
    def pack(cls, requests: dict[int, PredictRequest]) -> PredictBatch:
        ids = sorted(requests)
        ordered = [requests[a] for a in ids]
        return cls(
            agent_ids=ids,
            sizes=[len(next(iter(r.inputs.values()))) for r in ordered],
            inputs=concat_arrays([r.inputs for r in ordered]),
            states=concat_arrays([r.states for r in ordered]),
        )

    def unpack(self) -> dict[int, PredictRequest]:
        parts = zip(
            split_arrays(self.inputs, self.sizes),
            split_arrays(self.states, self.sizes),
            strict=True,
        )
        return {
            agent_id: PredictRequest(inputs, states)
            for agent_id, (inputs, states) in zip(self.agent_ids, parts, strict=True)
        }


@dataclass
class PredictReplyBatch:
    """The CDP's predictions for several agents of one process, stacked like
    ``PredictBatch``."""

    agent_ids: list[int]
    sizes: list[int]
    actions: ArrayDict
    states: ArrayDict
    behavior: ArrayDict

    def unpack(self) -> dict[int, PredictReply]:
        """Each agent's rows, copied: what an agent stores (its actions, states, behaviour
        data) must not keep the whole process's batch alive in a replay buffer."""

        def own(arrays: ArrayDict) -> list[ArrayDict]:
            return [
                {k: v.copy() for k, v in part.items()} for part in split_arrays(arrays, self.sizes)
            ]

        parts = zip(own(self.actions), own(self.states), own(self.behavior), strict=True)
        return {
            agent_id: PredictReply(*part)
            for agent_id, part in zip(self.agent_ids, parts, strict=True)
        }


@dataclass
class RequestBundle:
    """What the agents of one process that wait on one CDP ask it, in one message:
    their predictions stacked, their (rare, large) learn batches by agent id."""

    predict: PredictBatch | None = None
    learn: dict[int, LearnRequest] = field(default_factory=dict)

    @classmethod
    def of(cls, requests: dict[int, Request]) -> RequestBundle:
        predict = {a: r for a, r in requests.items() if isinstance(r, PredictRequest)}
        learn = {a: r for a, r in requests.items() if isinstance(r, LearnRequest)}
        unknown = set(requests) - set(predict) - set(learn)
        if unknown:
            raise TypeError(f"not a request: {[requests[a] for a in sorted(unknown)]}")
        return cls(PredictBatch.pack(predict) if predict else None, learn)

    def requests(self) -> dict[int, Request]:
        unpacked: dict[int, Request] = dict(self.predict.unpack()) if self.predict else {}
        unpacked.update(self.learn)
        return unpacked


@dataclass
class ReplyBundle:
    """The CDP's replies to the agents of one process, shaped like ``RequestBundle``."""

    predict: PredictReplyBatch | None = None
    learn: dict[int, LearnReply] = field(default_factory=dict)

    def replies(self) -> dict[int, Reply]:
        unpacked: dict[int, Reply] = dict(self.predict.unpack()) if self.predict else {}
        unpacked.update(self.learn)
        return unpacked
