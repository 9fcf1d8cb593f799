"""Each discrete-action algorithm of the zoo solves CartPole-v0 within a game budget.

Every test trains the experiment the examples run (flare.experiments.cartpole), seeded, with full
batches (batch_wait_s=1), so the games played are the same on any machine; it asserts
that the mean return of 100 games reached 195 within the stated budget of games.
"""

from functools import partial

import numpy as np
import pytest

from flare.common.curves import moving_average
from flare.experiments.cartpole import train_ppo, train_value_based

# every test here trains a CartPole learner to its target (a minute each)
pytestmark = pytest.mark.slow

TARGET = 195.0
NUM_AGENTS = 8

# the experiment, extra arguments, games per agent (the budget is 8 times that)
CASES = {
    "ppo": (train_ppo, {}, 60),
    "dqn": (partial(train_value_based, "dqn"), {}, 100),
    "dqn_prioritized": (partial(train_value_based, "dqn"), {"prioritized": True}, 100),
    "sarsa": (partial(train_value_based, "sarsa"), {}, 100),
    "c51": (partial(train_value_based, "c51"), {}, 100),
    "qr_dqn": (partial(train_value_based, "qr-dqn"), {}, 100),
    "iqn": (partial(train_value_based, "iqn"), {}, 100),
}


@pytest.mark.parametrize("name", list(CASES))
def test_algorithm_solves_cartpole_within_budget(name, no_stray_processes):
    train, kwargs, games_per_agent = CASES[name]
    manager = train(num_games=games_per_agent, seed=0, print_interval_s=0, **kwargs)
    returns = np.array([r.return_ for r in manager.stats])
    best = moving_average(returns, 100)[99:].max() if len(returns) >= 100 else returns.mean()
    assert manager.reached_target, (
        f"{name}: best mean of 100 games {best:.1f} after {len(returns)} games"
    )
    assert len(returns) <= NUM_AGENTS * games_per_agent
    assert best >= TARGET
