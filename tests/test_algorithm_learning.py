"""Each discrete-action algorithm of the zoo solves CartPole-v0 within a game budget.

Every test trains the example as written (examples/*_example.py), seeded, with full
batches (batch_wait_s=1), so the games played are the same on any machine; it asserts
that the mean return of 100 games reached 195 within the stated budget of games.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from flare.common.curves import moving_average

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import c51_example  # noqa: E402  (the examples are the code under test)
import dqn_example  # noqa: E402
import iqn_example  # noqa: E402
import ppo_example  # noqa: E402
import qr_dqn_example  # noqa: E402
import sarsa_example  # noqa: E402

TARGET = 195.0
NUM_AGENTS = 8

# example, extra train() arguments, games per agent (the budget is 8 times that)
CASES = {
    "ppo": (ppo_example, {}, 60),
    "dqn": (dqn_example, {}, 100),
    "dqn_prioritized": (dqn_example, {"prioritized": True}, 100),
    "sarsa": (sarsa_example, {}, 100),
    "c51": (c51_example, {}, 100),
    "qr_dqn": (qr_dqn_example, {}, 100),
    "iqn": (iqn_example, {}, 100),
}


@pytest.mark.parametrize("name", list(CASES))
def test_algorithm_solves_cartpole_within_budget(name, no_stray_processes):
    example, kwargs, games_per_agent = CASES[name]
    manager = example.train(num_games=games_per_agent, seed=0, print_interval_s=0, **kwargs)
    returns = np.array([r.return_ for r in manager.stats])
    best = moving_average(returns, 100)[99:].max() if len(returns) >= 100 else returns.mean()
    assert manager.reached_target, (
        f"{name}: best mean of 100 games {best:.1f} after {len(returns)} games"
    )
    assert len(returns) <= NUM_AGENTS * games_per_agent
    assert best >= TARGET
