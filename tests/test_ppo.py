"""PPO's pieces against hand-worked answers: GAE run by run, the clip, the epochs."""

import math

import pytest
import torch
import torch.nn as nn
from torch.distributions import Categorical

from flare.algorithm_zoo.ppo import BEHAVIOR_LOG_PROB, PPO
from flare.framework.algorithm import Model


class TableAC(Model):
    """State-independent logits; V(s) = the state number in ``sensor`` times ``scale``."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(2))
        self.scale = nn.Parameter(torch.ones(1))

    def get_input_specs(self):
        return [("sensor", dict(shape=[1]))]

    def get_action_specs(self):
        return [("action", dict(shape=[1], dtype="int64"))]

    def policy(self, inputs, states):
        batch = inputs["sensor"].size(0)
        return {"action": Categorical(logits=self.logits.expand(batch, 2))}, states

    def value(self, inputs, states):
        return {"v_value": inputs["sensor"] * self.scale}, states


def _column(values, dtype=torch.float32):
    return torch.tensor([[v] for v in values], dtype=dtype)


def test_advantages_are_computed_run_by_run():
    alg = PPO(TableAC(), discount_factor=0.5, gae_lambda=1.0)
    # two runs: states 1 -> 2 -> 3 (data ends, alive) and 4 -> 5 (game over)
    advantages, targets = alg.advantages(
        inputs={"sensor": _column([1, 2, 4])},
        next_inputs={"sensor": _column([2, 3, 5])},
        states={},
        next_states={},
        next_alive={"alive": _column([1, 1, 0])},
        rewards={"reward": _column([1, 1, 1])},
        sequence_lengths=[2, 1],
    )
    # run 1 (lambda 1: Monte-Carlo to the data's end, bootstrapping V(3) = 3):
    #   G_1 = 1 + 0.5 * (1 + 0.5 * 3) = 2.25, A_1 = 2.25 - 1; G_2 = 1 + 0.5 * 3 = 2.5, A_2 = 0.5
    # run 2: game over, G = 1, A = 1 - 4 (nothing leaks in from run 1)
    assert advantages.flatten().tolist() == pytest.approx([1.25, 0.5, -3.0])
    assert targets.flatten().tolist() == pytest.approx([2.25, 2.5, 1.0])


def _one_sample_batch(old_log_prob):
    return dict(
        inputs={"sensor": _column([0])},
        next_inputs={"sensor": _column([0])},
        states={},
        next_states={},
        next_alive={"alive": _column([0])},
        actions={"action": _column([1], torch.int64), BEHAVIOR_LOG_PROB: _column([old_log_prob])},
        next_actions={"action": _column([0], torch.int64), BEHAVIOR_LOG_PROB: _column([0.0])},
        rewards={"reward": _column([1.0])},  # advantage = 1 - V(0) = 1 > 0
    )


def test_the_clip_stops_the_policy_gradient_beyond_one_plus_epsilon():
    log_half = math.log(0.5)
    moved = PPO(TableAC(), num_epochs=1, optim=(torch.optim.SGD, dict(lr=0.1)), grad_clip=None)
    costs = moved.update(**_one_sample_batch(old_log_prob=log_half))  # ratio 1: inside
    assert moved.model.logits[1].item() > moved.model.logits[0].item()
    assert costs["clipped"].item() == 0.0
    # ratio e > 1.2 with a positive advantage: the clipped term is flat, no gradient
    stuck = PPO(TableAC(), num_epochs=1, optim=(torch.optim.SGD, dict(lr=0.1)), grad_clip=None)
    costs = stuck.update(**_one_sample_batch(old_log_prob=log_half - 1.0))
    assert stuck.model.logits.tolist() == [0.0, 0.0]
    assert costs["clipped"].item() == 1.0
    assert costs["policy_cost"].item() == pytest.approx(-1.2)  # -clip(e) * A


def test_each_epoch_takes_one_step_per_minibatch():
    alg = PPO(TableAC(), num_epochs=3, minibatch_size=2)
    steps = []
    original = alg.optimizer_step
    alg.optimizer_step = lambda loss: (steps.append(1), original(loss))
    batch = _one_sample_batch(0.0)
    batch = {
        field: {k: v.repeat(5, 1) for k, v in values.items()} for field, values in batch.items()
    }
    costs = alg.update(**batch, sequence_lengths=[5])
    assert len(steps) == 3 * 3  # 5 samples in minibatches of 2: 3 steps per epoch
    assert costs["cost"].shape == (5, 1)


def test_nan_logits_of_a_zoo_model_still_fail_when_sampling():
    """The zoo's policies skip torch's argument checks (speed); a diverged model must
    still fail loudly, not act at random."""
    from flare.model_zoo.simple_models import SimpleModelAC

    model = SimpleModelAC((4,), 2, nn.Linear(4, 8))
    with torch.no_grad():
        model.policy_head.bias.fill_(float("nan"))
    algorithm = PPO(model)
    with pytest.raises(RuntimeError, match="nan"):
        algorithm.predict({"sensor": torch.zeros(3, 4)}, {})


def _memory_batch(image_shape, runs=(5, 3, 8), seed=0):
    """Whole runs for a memory model: each run's first stored state is zeros."""
    generator = torch.Generator().manual_seed(seed)
    size = sum(runs)
    inputs = {
        "image": torch.randint(0, 256, (size, *image_shape), generator=generator).to(torch.uint8),
        "instruction": torch.randint(1, 10, (size, 5), generator=generator),
    }
    next_inputs = {k: v.roll(-1, 0) for k, v in inputs.items()}
    return dict(
        inputs=inputs,
        next_inputs=next_inputs,
        states={"state": torch.zeros(size, 32)},
        next_states={"state": torch.zeros(size, 32)},
        actions={
            "action": torch.randint(0, 3, (size, 1), generator=generator),
            BEHAVIOR_LOG_PROB: torch.full((size, 1), math.log(1 / 3)),
        },
        rewards={"reward": torch.rand(size, 1, generator=generator)},
        next_alive={"alive": torch.ones(size, 1)},
        sequence_lengths=list(runs),
    )


def _gft(heads_from_states: bool):
    from flare.model_zoo.gft_models import GFTModelAC

    class Model_(GFTModelAC):
        calls = 0

        def memory_features(self, inputs):
            type(self).calls += 1
            return super().memory_features(inputs)

        def heads_from_states(self, inputs, next_states):
            return super().heads_from_states(inputs, next_states) if heads_from_states else None

    torch.manual_seed(0)
    return Model_((3, 24, 32), 5, 10, 3, hidden_size=32, pixels=True)


def test_a_memory_model_s_heads_read_the_replayed_states_and_learn_the_same():
    """With ``heads_from_states`` the update reuses the replay's states instead of seeing
    every minibatch twice: the same costs and weights (to rounding), fewer passes."""
    results = []
    for hook in (False, True):
        model = _gft(hook)
        ppo = PPO(model, num_epochs=2, minibatch_size=6, entropy_weight=0.01)
        before = [p.detach().clone() for p in model.parameters()]
        costs = ppo.update(**_memory_batch((3, 24, 32)))
        results.append((costs, list(model.parameters()), type(model).calls))
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    (plain, plain_weights, plain_calls), (reused, reused_weights, reused_calls) = results
    for name in plain:
        torch.testing.assert_close(reused[name], plain[name], atol=1e-5, rtol=1e-4)
    for p, q in zip(plain_weights, reused_weights, strict=True):
        torch.testing.assert_close(q, p, atol=1e-5, rtol=1e-4)
    # GAE's pass over the batch and each minibatch's pass are no longer repeated
    assert reused_calls < plain_calls
