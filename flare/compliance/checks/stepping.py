"""Checks of stepping one episode after another: Reset, Step, actrep, seeds, episode ends
and time-outs."""

from __future__ import annotations

import grpc
import numpy as np

from flare.compliance.checks.base import CODE, play, same_observations
from flare.compliance.probe import CheckFailed, CheckSkipped, Probe, action_plan, valid_actions
from flare.framework.env_spec import EnvSpec


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
        return f"actrep=3 equals {len(steps)} single steps, rewards summed"
    raise CheckSkipped(f"no action in {attempts} tries moved the observation over three steps")


def seeded_reset(probe: Probe) -> str:
    length = _same_episodes(probe, seed=123)
    return f"two sessions with one seed agree over {length} steps (with resets)"


def _same_episodes(probe: Probe, seed: int, length: int = 30) -> int:
    """Two sessions of one seed follow one plan: every observation must agree."""
    first, spec = probe.open(seed=seed)
    second, _ = probe.open(seed=seed)
    plan = action_plan(spec, seed=1, length=length)
    a, b = play(probe, first, plan), play(probe, second, plan)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        if not same_observations(x, y):
            raise CheckFailed(f"two sessions with seed {seed} differ at observation {t}")
    return length


def reset_seed(probe: Probe) -> str:
    """A Reset with a seed starts the episode a session opened with that seed starts with,
    whatever the session played before; twice the same seed, twice the same episodes."""
    fresh, spec = probe.open(seed=77)
    reseeded, _ = probe.open(seed=5)
    plan = action_plan(spec, seed=3, length=25)
    expected = play(probe, fresh, plan)
    play(probe, reseeded, plan[:7])  # (its own seed's episode first)
    for attempt in ("a session of seed 5, reset with seed 77", "the same, reset with 77 again"):
        seen = play(probe, reseeded, plan, seed=77)
        for t, (x, y) in enumerate(zip(expected, seen, strict=True)):
            if not same_observations(x, y):
                raise CheckFailed(
                    f"{attempt} differs at observation {t} from a session opened with seed 77"
                )
    return "a reset with seed 77 replays the episodes of a session opened with seed 77, twice"


EXTREME_SEEDS = (-1, -(2**63), 2**63 - 1)
"""Seeds a server must take like any other: every int64 is valid, negative ones included."""


def seeds(probe: Probe) -> str:
    """Negative and extreme int64 seeds open, reset and step (a server whose env takes only
    non-negative seeds must map them, not refuse them), and a negative seed is a seed: two
    sessions of it play the same episode."""
    rng = np.random.default_rng(8)
    for seed in EXTREME_SEEDS:
        try:
            session_id, spec = probe.open(seed=seed)
            probe.reset(session_id)
            probe.step(session_id, valid_actions(spec, rng))
        except grpc.RpcError as err:
            raise CheckFailed(
                f"seed {seed}: {err.code().name} ({err.details()}); every int64 is a valid seed"
            ) from None
    length = _same_episodes(probe, seed=-12345, length=20)
    return (
        f"seeds {list(EXTREME_SEEDS)} play; two sessions of seed -12345 agree over {length} steps"
    )


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


SHORT_LIMIT = 3
"""The step limit the time-out check asks for (config ``max_episode_steps``)."""


def time_out(probe: Probe, episodes: int = 20) -> str:
    """The time-out path: with a short step limit (asked for, or the spec's own when the
    server refuses the key), an episode that reaches the limit ends with time_out at exactly
    that length (earlier game overs are fine, never both at once), and a step after it is
    FAILED_PRECONDITION."""
    config = {**probe.target.config, "max_episode_steps": str(SHORT_LIMIT)}
    try:
        session_id, spec = probe.open(seed=9, config=config)
    except grpc.RpcError as err:
        if err.code() != CODE.INVALID_ARGUMENT:
            raise CheckFailed(
                f"OpenSession with max_episode_steps={SHORT_LIMIT}: expected a session or "
                f"INVALID_ARGUMENT, got {err.code().name} ({err.details()})"
            ) from None
        session_id, spec = probe.open(seed=9)
        limit = spec.max_episode_steps
        if not 0 < limit <= probe.target.episode_steps_probe:
            raise CheckSkipped(
                f"the server offers no short step limit: config max_episode_steps is refused "
                f"({err.details()}), and the spec's own limit is {limit or 'none'}"
            ) from None
        how = f"the spec's own max_episode_steps={limit} (config max_episode_steps refused)"
    else:
        limit = spec.max_episode_steps
        if not 1 <= limit <= SHORT_LIMIT:
            raise CheckFailed(
                f"config max_episode_steps={SHORT_LIMIT} was accepted, but the spec reports "
                f"max_episode_steps={limit}, not 1..{SHORT_LIMIT}"
            )
        how = f"config max_episode_steps={SHORT_LIMIT} (spec: {limit})"
    return _until_time_out(probe, session_id, spec, limit, episodes, how)


def _until_time_out(
    probe: Probe, session_id: str, spec: EnvSpec, limit: int, episodes: int, how: str
) -> str:
    """Play episodes (at most ``episodes``, and a bounded number of steps) until one times
    out; every end is checked on the way."""
    rng = np.random.default_rng(9)
    budget = max(limit, probe.target.episode_steps_probe)
    probe.reset(session_id)
    game_overs: list[int] = []
    length = 0
    for _ in range(budget):
        step = probe.step(session_id, valid_actions(spec, rng))
        length += 1
        if step.game_over != 0 and step.time_out:
            raise CheckFailed(f"step {length} is both a game over and a time-out ({how})")
        if step.time_out and length != limit:
            raise CheckFailed(f"a time-out after {length} steps; the limit is {limit} ({how})")
        if length >= limit and not step.ended:
            raise CheckFailed(f"an episode is still running after {length} steps ({how})")
        if not step.ended:
            continue
        end = "a time-out" if step.time_out else f"a game over ({step.game_over})"
        with probe.expect_status(CODE.FAILED_PRECONDITION, f"Step after {end}"):
            probe.step(session_id, valid_actions(spec, rng))
        if step.time_out:
            return (
                f"with {how}: episode {len(game_overs) + 1} timed out at step {limit} "
                f"(after {len(game_overs)} earlier game overs); a step after it refused"
            )
        game_overs.append(length)
        if len(game_overs) >= episodes:
            break
        probe.reset(session_id)
        length = 0
    raise CheckSkipped(
        f"with {how}, no episode reached the limit: {len(game_overs)} ended by game over "
        f"first (lengths {game_overs})"
    )
