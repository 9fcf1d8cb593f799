"""Checks of stepping one episode after another: Reset, Step, actrep, seeds, episode ends
and StepMany."""

from __future__ import annotations

import numpy as np

from flare.bridge.codec import decode, encode
from flare.compliance.checks.base import CODE, play, same_observations
from flare.compliance.probe import (
    CheckFailed,
    CheckSkipped,
    Probe,
    Step,
    action_plan,
    decoded,
    valid_actions,
)
from flare.simulator.v1 import simulator_pb2 as pb


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
            last.ended == first.ended and same_observations(first.observations, last.observations)
        ):
            continue  # nothing would tell actrep=3 from actrep=1: try another action
        once = probe.step(repeated, actions, actrep=3)
        if not same_observations(once.observations, steps[-1].observations):
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
    a, b = play(probe, first, plan), play(probe, second, plan)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        if not same_observations(x, y):
            raise CheckFailed(f"two sessions with seed 123 differ at observation {t}")
    return f"two sessions with one seed agree over {len(plan)} steps (with resets)"


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
                if not same_observations(first, probe.reset(session_id)):
                    raise CheckFailed(f"step {t}: row {row} is not its new episode's start")
            if not _same_step(got, alone):
                raise CheckFailed(f"step {t}: StepMany row {row} differs from Step")
        resets += len(reset_rows)
        if resets and t >= 9:
            return f"StepMany over {rows} sessions equals Step on each, {resets} auto-resets"
    raise CheckFailed(f"no episode ended in {max_steps} StepMany calls with auto_reset")


def _same_step(x: Step, y: Step) -> bool:
    return (
        same_observations(x.observations, y.observations)
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
