"""Same seeds, same run: with every agent in each batch, results do not depend on timing."""

import time
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.framework.agent import OnlineHelper
from flare.framework.env import GymEnv
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC


class SlowToOpenGymEnv(GymEnv):
    """A GymEnv that takes ``open_s`` seconds to build, like a simulator session."""

    def __init__(self, open_s: float = 0.0, **kwargs) -> None:
        time.sleep(open_s)
        super().__init__(**kwargs)


@dataclass
class Outcome:
    games: dict[int, list[float]]  # per agent, its returns in order
    parameters: dict[str, torch.Tensor]  # the model's state_dict when the run ended


def _same_parameters(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(
    seed: int,
    open_s: tuple[float, ...] = (0.0,) * 4,
    batch_wait_s: float = 5.0,
    start_method: str = "auto",
) -> Outcome:
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(4, 32), nn.ReLU())
    alg = SimpleAC(
        SimpleModelAC(dims=(4,), num_actions=2, perception_net=mlp),
        optim=(optim.RMSprop, dict(lr=1e-3)),
    )
    settings = dict(
        algorithm=alg, agent_helper=OnlineHelper, sample_interval=4, batch_wait_s=batch_wait_s
    )
    manager = Manager({"RL": settings}, dict(print_interval_s=0), start_method=start_method)
    for i in range(4):
        agent = SimpleRLAgent(15)
        agent.set_env(
            SlowToOpenGymEnv, open_s=open_s[i], game_name="CartPole-v0", seed=seed * 10 + i
        )
        manager.add_agent(agent)
    manager.start()
    per_agent: dict[int, list[float]] = {}
    for record in manager.stats:
        per_agent.setdefault(record.agent, []).append(record.return_)
    # the Manager's CT holds the algorithm that learned (the learner process's own)
    assert manager.cts["RL"].alg is alg
    parameters = {k: v.detach().clone() for k, v in alg.model.state_dict().items()}
    return Outcome(per_agent, parameters)


def test_same_seed_same_games_and_parameters():
    first, second = _run(3), _run(3)
    assert first.games == second.games
    assert _same_parameters(first.parameters, second.parameters)
    other = _run(4)
    assert other.games != first.games
    assert not _same_parameters(other.parameters, first.parameters)
    # the run learned: its parameters are not the ones it started from
    torch.manual_seed(3)
    initial = SimpleModelAC(
        dims=(4,), num_actions=2, perception_net=nn.Sequential(nn.Linear(4, 32), nn.ReLU())
    ).state_dict()
    assert not _same_parameters(first.parameters, initial)


@pytest.mark.parametrize(
    "start_method", ["fork", pytest.param("forkserver", marks=pytest.mark.slow)]
)
def test_agents_that_start_late_still_join_the_first_batch(start_method):
    """Each process builds its envs and first requests, then waits until every process is
    ready: an env that takes a second to open (longer than batch_wait_s) does not split
    the first batch, so the run plays the same games as one whose envs open at once."""
    late = _run(3, open_s=(0.0, 0.0, 0.0, 1.0), batch_wait_s=0.3, start_method=start_method)
    prompt = _run(3, batch_wait_s=0.3, start_method=start_method)
    assert late.games == prompt.games
    assert _same_parameters(late.parameters, prompt.parameters)
