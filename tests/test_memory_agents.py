"""Agents with short-term memory: states reset at each episode, carried across steps,
stored with each step, replayed from a run's first stored state when learning; and an
RNN agent solving a task a memoryless agent cannot."""

import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent, SimpleRNNRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.env_zoo.memory_cue import CueMemoryEnv
from flare.experiments import memory as memory_experiment
from flare.framework.agent_helper import ExpReplayHelper, OnlineHelper, ReplayBuffer
from flare.framework.batch import PredictReply, PredictRequest
from flare.framework.computation_task import ComputationTask
from flare.framework.experience import ALIVE, GAME_OVER, DataKeys, Experience
from flare.framework.memory import unroll_states
from flare.framework.specs import Spec
from flare.model_zoo.rnn_models import SimpleRNNModelAC, SimpleRNNModelQ
from flare.testing.envs import ChainEnv

STATE_SPEC = Spec("state", (2,), np.dtype("float32"))
KEYS = DataKeys(inputs=("sensor",), actions=("action",), states=("state",), rewards=("reward",))


def rnn_model(hidden=4):
    return SimpleRNNModelAC((3,), 2, nn.Sequential(nn.Linear(3, 8), nn.ReLU()), hidden)


# ----- the agent's side: reset, carry, store ----------------------------------------------
class CountingChannel:
    """Stands in for the CDP: action 1, and next state = state + 1 (a step counter)."""

    def request(self, message):
        assert isinstance(message, PredictRequest)
        return PredictReply({"action": np.array([[1]])}, {"state": message.states["state"] + 1})

    def close(self):
        pass


def test_a_memory_agent_starts_each_episode_from_zeros_and_stores_the_states_it_acted_from():
    helper = OnlineHelper("RL", CountingChannel(), sample_interval=10_000)
    helper.bind(KEYS, seed=0, state_specs=[STATE_SPEC])
    agent = SimpleRNNRLAgent(num_games=2)
    agent.add_agent_helper(helper)
    agent.env = ChainEnv(max_steps=3)
    agent._run_one_episode()
    agent._run_one_episode()
    stored = [float(e.data["state"][0]) for e in helper.buffer]
    # 3 steps and the final observation per episode; the second starts from zeros again
    assert stored == [0, 1, 2, 3, 0, 1, 2, 3]
    assert all(e.data["state"].shape == (2,) for e in helper.buffer)


def test_a_memoryless_agent_on_a_memory_model_is_told_what_to_do():
    helper = OnlineHelper("RL", CountingChannel())
    helper.bind(KEYS, seed=0, state_specs=[STATE_SPEC])
    agent = SimpleRLAgent(num_games=1)
    agent.add_agent_helper(helper)
    agent.env = ChainEnv(max_steps=3)
    with pytest.raises(KeyError, match="carries states.*SimpleRNNRLAgent"):
        agent._run_one_episode()


def test_initial_states_follow_the_model_specs():
    alg = SimpleAC(rnn_model(hidden=5))
    helper = OnlineHelper("RL", CountingChannel())
    helper.bind(ComputationTask("RL", alg).keys, seed=0, state_specs=alg.state_specs)
    (name, zeros), *_ = helper.initial_states().items()
    assert name == "state" and zeros.shape == (5,) and not zeros.any()


# ----- replay: runs of one episode ---------------------------------------------------------
def _experience(t, alive=ALIVE):
    return Experience(data={"sensor": np.array([t]), "state": np.array([10.0 * t])}, alive=alive)


def test_replayed_runs_stay_in_one_episode_and_start_with_their_stored_state():
    buffer = ReplayBuffer(100)
    for t in range(5):  # episode A: steps 0..4, game over at 5
        buffer.add(_experience(t))
    buffer.add(_experience(5, GAME_OVER))
    for t in range(10, 13):  # episode B, still running
        buffer.add(_experience(t))
    runs = buffer.sample(200, random.Random(0), length=3)
    starts = set()
    for run in runs:
        steps = [int(e.data["sensor"][0]) for e in run]
        starts.add(steps[0])
        assert steps == list(range(steps[0], steps[0] + len(steps)))  # consecutive
        assert all(e.has_successor for e in run[:-1])  # never across an episode end
        assert len(run) == min(4, (6 if steps[0] < 10 else 13) - steps[0])
    assert starts == {0, 1, 2, 3, 4, 10, 11}  # every valid start is drawn


def test_prioritized_replay_of_runs_is_refused_clearly():
    with pytest.raises(ValueError, match="sequence_length=1 with prioritized"):
        ExpReplayHelper("RL", None, 100, 8, prioritized=True, sequence_length=4)
    with pytest.raises(ValueError, match="sequence_length must be >= 1"):
        ExpReplayHelper("RL", None, 100, 8, sequence_length=0)


# ----- learning: states recomputed along each run -----------------------------------------
class StepByStepRNNModelQ(SimpleRNNModelQ):
    """The same model without the batched perception split: the generic unroll path."""

    def memory_features(self, inputs):
        return None

    def next_states(self, inputs, states):
        return {"state": self.cell(self.perception_net(inputs["sensor"]), states["state"])}


@pytest.mark.parametrize("model_class", [SimpleRNNModelQ, StepByStepRNNModelQ])
def test_unroll_replays_each_run_from_its_first_stored_state(model_class):
    torch.manual_seed(0)
    model = model_class((3,), 2, nn.Sequential(nn.Linear(3, 8), nn.ReLU()), 4)
    inputs = torch.randn(7, 3, requires_grad=True)
    stored = torch.randn(7, 4)
    before, after = unroll_states(model, {"sensor": inputs}, {"state": stored}, [3, 1, 3])
    expected_before, expected_after = [], []
    for start, length in ((0, 3), (3, 1), (4, 3)):
        state = stored[start : start + 1]  # later stored states are never read
        for t in range(start, start + length):
            expected_before.append(state)
            state = model.next_states({"sensor": inputs[t : t + 1]}, {"state": state})["state"]
            expected_after.append(state)
    torch.testing.assert_close(before["state"], torch.cat(expected_before))
    torch.testing.assert_close(after["state"], torch.cat(expected_after))
    # backpropagation through time: the last state of run 1 depends on its first input
    after["state"][2].sum().backward()
    assert inputs.grad[0].abs().sum() > 0
    assert inputs.grad[3:].abs().sum() == 0  # other runs are untouched


def test_learning_with_memory_backpropagates_to_the_cue():
    torch.manual_seed(0)
    alg = SimpleAC(rnn_model())
    cue, blank, question = [1.0, 0, 0], [0, 0, 0], [0, 0, 1.0]
    sensors = torch.tensor([cue, blank, question])
    batch = dict(
        inputs={"sensor": sensors},
        next_inputs={"sensor": torch.tensor([blank, question, blank])},
        states={"state": torch.zeros(3, 4)},
        next_states={"state": torch.zeros(3, 4)},
        next_alive={"alive": torch.tensor([[1.0], [1.0], [0.0]])},
        actions={"action": torch.tensor([[0], [0], [0]])},
        next_actions={"action": torch.tensor([[0], [0], [0]])},
        rewards={"reward": torch.tensor([[0.0], [0.0], [1.0]])},
    )
    replayed = alg.with_memory(batch, [3])
    # the question's state is computed from the cue, not read from the (zero) stored state
    assert replayed["states"]["state"][2].abs().sum() > 0
    cue_weight = alg.model.perception_net[0].weight
    before = cue_weight[:, 0].detach().clone()  # only the cue's input reaches this column
    alg.update(**batch, sequence_lengths=[3])
    assert not torch.equal(before, cue_weight[:, 0].detach())


# ----- an RNN agent solves what a memoryless agent cannot ---------------------------------
MEMORY_CASES = {"ac": 300, "ppo": 300, "q": 300}


@pytest.mark.parametrize("algorithm", sorted(MEMORY_CASES))
@pytest.mark.slow
def test_only_the_agent_with_memory_recalls_the_cue(algorithm):
    games = MEMORY_CASES[algorithm]
    with_memory = memory_experiment.train(
        True, algorithm, num_games=games, batch_wait_s=1.0, stop_at_success=0.95, print_interval_s=0
    )
    last, _ = memory_experiment.success_rates(with_memory)
    assert with_memory.reached_target and last >= 0.95, (algorithm, len(with_memory.stats), last)


@pytest.mark.slow
def test_the_same_agent_without_memory_stays_at_a_coin_flip():
    manager = memory_experiment.train(
        False, "ac", num_games=300, batch_wait_s=1.0, stop_at_success=0.95, print_interval_s=0
    )
    last, best = memory_experiment.success_rates(manager)
    assert len(manager.stats) == 8 * 300 and not manager.reached_target
    assert last < 0.7 and best < 0.75, (last, best)


def test_the_cue_is_shown_at_the_first_step_only():
    env = CueMemoryEnv(delay=2, seed=0)
    first = env.reset()["sensor"]
    cue = int(np.argmax(first[:2]))
    seen = [first.tolist()]
    for _ in range(3):
        obs, reward, game_over = env.step({"action": 0})
        seen.append(obs["sensor"].tolist())
    assert seen[1:3] == [[0, 0, 0], [0, 0, 0]] and seen[3] == [0, 0, 1]
    _, reward, game_over = env.step({"action": cue})
    assert game_over == 1 and reward["reward"][0] == 1.0
