"""The bundled Node.js grid world: it passes the compliance suite on every level, and
FLARE agents learn to follow its instructions over gRPC.

These tests need Node and the simulator's packages (`make install`); without them they
fail, never skip, so CI cannot pass without running them.
"""

import subprocess
import sys

import pytest

from flare.bridge.launch import gridworld_command, simulator_process
from flare.compliance import CHECKS, Target, run_check, run_checks
from flare.experiments import gridworld as gridworld_experiment


@pytest.fixture(scope="module")
def gridworld():
    with simulator_process(gridworld_command()) as address:
        yield address


@pytest.mark.parametrize("check", CHECKS, ids=str)
def test_gridworld_passes(check, gridworld):
    assert run_check(check, Target(gridworld, config={"level": "1"}))


@pytest.mark.parametrize("level", ["2", "3"])
def test_gridworld_passes_every_check_on_harder_levels(gridworld, level):
    results = run_checks(Target(gridworld, config={"level": level}))
    assert [r for r in results if r.outcome != "PASS"] == []


@pytest.mark.slow
def test_check_sim_command_on_gridworld(gridworld):
    result = subprocess.run(
        [sys.executable, "-m", "flare", "check-sim", gridworld, "--config", "level=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CHECKS)} checks: {len(CHECKS)} passed, 0 failed" in result.stdout


@pytest.mark.slow
def test_agents_learn_to_follow_instructions(gridworld):
    # A policy that ignores the instruction ends on the named square as often as on the
    # other one (a random walk: ~45% each). Budget: 16 x 1500 games, stopping once the
    # mean return of 100 games (success minus wrong square) reaches 0.5. Learning takes
    # off after 9,000-12,000 games and reaches 0.5 a few thousand games later.
    manager = gridworld_experiment.train(
        gridworld,
        level="1",
        num_agents=16,
        num_games=1500,
        stop_at_success=0.5,
        seed=0,
        batch_wait_s=5.0,  # batches hold every agent, in agent order
        agents_per_process=8,  # (with full batches: the same games as one process each)
    )
    last = [record.return_ for record in manager.stats[-100:]]
    success = sum(r > 0 for r in last) / len(last)
    wrong = sum(r < 0 for r in last) / len(last)
    assert success >= 0.6 and success - wrong >= 0.4, (
        f"last 100 of {len(manager.stats)} games: {success:.0%} success, {wrong:.0%} wrong"
    )


@pytest.mark.slow
def test_the_grid_world_in_client_mode_plays_a_run_through_act_streams():
    # 4 Act streams from one Node process (client.js --streams 4), 3 games each in all:
    # the learner ends the streams with OK once 12 games are played, the client exits 0
    manager = gridworld_experiment.train_client_mode(
        level="1", num_agents=4, num_games=3, stop_at_success=None, seed=0
    )
    assert manager.games_played == 12  # (streams racing for the last games: never more)
    assert {r.agent for r in manager.stats} == {0, 1, 2, 3}
    assert all(r.return_ in (-1.0, 0.0, 1.0) for r in manager.stats)
    assert all(1 <= r.length <= 20 for r in manager.stats)  # level 1: a 20-step limit
