"""Models read whatever the simulator names its observations, and a mismatch is one line."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager, TrainingError
from flare.model_zoo.q_models import SimpleModelQ
from flare.model_zoo.rnn_models import SimpleRNNModelAC
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing.envs import ChainEnv


class PositionChainEnv(ChainEnv):
    """ChainEnv whose one observation is called ``position``."""

    def reset(self):
        return {"position": super().reset()["sensor"]}

    def step(self, actions, actrep=1):
        observations, rewards, game_over = super().step(actions, actrep)
        return {"position": observations["sensor"]}, rewards, game_over

    def observation_dims(self):
        return {"position": (1,)}


def _manager(model: nn.Module, num_agents: int = 2, games: int = 3) -> Manager:
    alg = SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))
    manager = Manager(
        {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=2)},
        dict(print_interval_s=0),
    )
    for _ in range(num_agents):
        agent = SimpleRLAgent(games)
        agent.set_env(PositionChainEnv, max_steps=4)
        manager.add_agent(agent)
    return manager


def test_a_model_told_the_observation_name_trains_on_it():
    torch.manual_seed(0)
    manager = _manager(SimpleModelAC((1,), 2, nn.Linear(1, 8), sensor_name="position"))
    manager.start()
    assert len(manager.stats) == 6
    assert all(record.length == 4 for record in manager.stats)


def test_a_name_mismatch_ends_the_run_at_once_with_one_line_naming_both_sides():
    manager = _manager(SimpleModelAC((1,), 2, nn.Linear(1, 8)), num_agents=4)
    with pytest.raises(TrainingError) as failure:
        manager.start()
    message = str(failure.value)
    assert message == (
        "CT 'RL''s model reads the observation(s) ['sensor'], but PositionChainEnv gives "
        "['position']: tell the model which observation to read (a zoo model's "
        "sensor_name=...) or rename the simulator's observation"
    )
    assert manager.stats == []  # no game was played


def test_a_shape_mismatch_is_one_line_too():
    manager = _manager(SimpleModelAC((3,), 2, nn.Linear(3, 8), sensor_name="position"))
    with pytest.raises(TrainingError) as failure:
        manager.start()
    assert str(failure.value) == (
        "CT 'RL''s model reads 'position' of shape (3,), but PositionChainEnv gives it with "
        "shape (1,)"
    )


@pytest.mark.parametrize(
    "model",
    [
        lambda: SimpleModelQ((1,), 2, nn.Linear(1, 8), sensor_name="position"),
        lambda: SimpleRNNModelAC((1,), 2, nn.Linear(1, 8), sensor_name="position"),
    ],
)
def test_zoo_models_read_the_name_they_are_given(model):
    built = model()
    assert [name for name, _ in built.get_input_specs()] == ["position"]
    states = {s: torch.zeros(1, *p["shape"]) for s, p in built.get_state_specs()}
    inputs = {"position": torch.from_numpy(np.ones((1, 1), np.float32))}
    if isinstance(built, SimpleModelQ):
        assert built.value(inputs, states)[0]["q_value"].shape == (1, 2)
    else:
        assert built.policy(inputs, states)[0]["action"].sample().shape[0] == 1
