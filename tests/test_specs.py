import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.common.device import select_device
from flare.framework.algorithm import Model, check_duplicate_spec_names
from flare.framework.common_functions import Flatten, idx_select
from flare.framework.specs import Spec, parse_specs
from flare.model_zoo.simple_models import SimpleModelAC


class DuplicateModel(Model):
    def get_input_specs(self):
        return [("sensor", dict(shape=[3])), ("action", dict(shape=[1]))]

    def get_action_specs(self):
        return [("action", dict(shape=[1], dtype="int64"))]


def test_simple_model_ac_specs():
    model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
    assert model.get_input_specs() == [("sensor", dict(shape=(4,)))]
    assert model.get_action_specs() == [("action", dict(shape=[1], dtype="int64"))]
    assert model.get_state_specs() == []
    assert model.get_reward_specs() == [("reward", dict(shape=[1]))]
    alg = SimpleAC(model)
    assert [s.name for s in alg.input_specs] == ["sensor"]
    assert alg.action_specs[0].dtype == np.int64
    assert alg.reward_specs[0] == Spec("reward", (1,), np.dtype("float32"))


def test_duplicate_names_across_specs_are_rejected():
    with pytest.raises(ValueError, match="action"):
        check_duplicate_spec_names(DuplicateModel())
    with pytest.raises(ValueError, match="more than one spec: action"):
        SimpleAC(DuplicateModel())


def test_duplicate_names_within_one_spec_list_are_rejected():
    with pytest.raises(ValueError, match="duplicate names in input specs: x"):
        parse_specs([("x", dict(shape=[1])), ("x", dict(shape=[2]))], "input")


@pytest.mark.parametrize(
    "props, message",
    [({}, "shape"), (dict(shape=[0]), "non-positive"), (dict(shape=[2], dtype="nope"), "dtype")],
)
def test_bad_spec_props(props, message):
    with pytest.raises(ValueError, match=message):
        parse_specs([("x", props)], "input")


def test_algorithm_needs_a_model():
    with pytest.raises(TypeError, match="flare Model"):
        SimpleAC(nn.Linear(2, 2))


def test_perception_net_must_output_a_vector():
    with pytest.raises(ValueError, match=r"\[batch, features\]"):
        SimpleModelAC(dims=[1, 4, 4], num_actions=2, perception_net=nn.Conv2d(1, 2, 3))


def test_gpu_id_minus_one_is_cpu():
    assert select_device(-1) == torch.device("cpu")


def test_gpu_id_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        assert select_device(0) == torch.device("cuda:0")
        with pytest.raises(RuntimeError, match="only"):
            select_device(torch.cuda.device_count())
    else:
        with pytest.raises(RuntimeError, match="CUDA is not available.*gpu_id=-1"):
            select_device(0)
        model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            SimpleAC(model, gpu_id=0)
    with pytest.raises(ValueError):
        select_device(-2)


def test_grad_clip_limits_the_update():
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
    alg = SimpleAC(model, optim=(torch.optim.SGD, dict(lr=1.0)), grad_clip=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    batch = _batch(big_reward=1e3)
    alg.update(**batch)
    moved = torch.sqrt(
        sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), before, strict=True))
    )
    assert moved.item() == pytest.approx(1e-3, rel=1e-3)  # SGD lr 1 moves exactly the clipped norm


def _batch(big_reward: float = 1.0, alive: float = 1.0):
    x = torch.ones(3, 4)
    return dict(
        inputs={"sensor": x},
        next_inputs={"sensor": x},
        states={},
        next_states={},
        next_alive={"alive": torch.full((3, 1), alive)},
        actions={"action": torch.zeros(3, 1, dtype=torch.int64)},
        next_actions={"action": torch.zeros(3, 1, dtype=torch.int64)},
        rewards={"reward": torch.full((3, 1), big_reward)},
    )


def test_simple_ac_bootstraps_through_time_out_not_game_over():
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
    alg = SimpleAC(model, discount_factor=0.5, value_cost_weight=1.0)
    with torch.no_grad():
        v = model.value({"sensor": torch.ones(1, 4)}, {})[0]["v_value"].item()
        logp = (
            model.policy({"sensor": torch.ones(1, 4)}, {})[0]["action"]
            .log_prob(torch.zeros(1, dtype=torch.int64))
            .item()
        )

    def expected(alive):
        td = 1.0 + 0.5 * abs(alive) * v - v
        return td**2 - logp * td

    for alive in (1.0, -1.0, 0.0):
        cost = alg.learn(**_batch(alive=alive))["cost"]
        assert cost.shape == (3, 1)
        assert cost[0, 0].item() == pytest.approx(expected(alive), rel=1e-5)
    timeout_cost = alg.learn(**_batch(alive=-1.0))["cost"]
    alive_cost = alg.learn(**_batch(alive=1.0))["cost"]
    assert torch.allclose(timeout_cost, alive_cost)


def test_actor_gradient_does_not_flow_into_the_critic_target():
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
    alg = SimpleAC(model, value_cost_weight=0.0)
    cost = alg.learn(**_batch())["cost"].sum()
    cost.backward()
    # with no value cost, only the policy loss remains: the value head gets no gradient
    assert model.value_head.weight.grad is None or model.value_head.weight.grad.abs().sum() == 0
    assert model.policy_head.weight.grad.abs().sum() > 0


def test_flatten_and_idx_select():
    assert Flatten()(torch.zeros(2, 3, 4, 5)).shape == (2, 60)
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert idx_select(values, torch.tensor([[2], [0]])).tolist() == [[3.0], [4.0]]
    with pytest.raises(ValueError):
        idx_select(values, torch.tensor([1, 0]))


def test_simple_ac_entropy_weight_subtracts_the_policy_entropy():
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
    plain = SimpleAC(model).learn(**_batch())["cost"]
    with torch.no_grad():
        entropy = model.policy({"sensor": torch.ones(1, 4)}, {})[0]["action"].entropy().item()
    exploring = SimpleAC(model, entropy_weight=0.1).learn(**_batch())["cost"]
    assert exploring.shape == plain.shape == (3, 1)
    assert torch.allclose(exploring, plain - 0.1 * entropy)
    with pytest.raises(ValueError, match="entropy_weight"):
        SimpleAC(model, entropy_weight=-1.0)


def test_image_instruction_model_depends_on_both_inputs():
    from flare.model_zoo.image_language_models import ImageInstructionModelAC

    torch.manual_seed(0)
    model = ImageInstructionModelAC(
        (3, 5, 5), instruction_length=5, vocabulary_size=9, num_actions=4
    )
    image = torch.randint(0, 256, (1, 3, 5, 5)).float()
    red, blue = torch.tensor([[1, 2, 3, 4, 8]]), torch.tensor([[1, 2, 3, 6, 8]])

    def logits(image, instruction):
        dist = model.policy({"image": image, "instruction": instruction}, {})[0]["action"]
        return dist.logits

    assert not torch.allclose(logits(image, red), logits(image, blue))
    assert not torch.allclose(logits(image, red), logits(torch.zeros_like(image), red))
    assert model.value({"image": image, "instruction": red}, {})[0]["v_value"].shape == (1, 1)
    assert [name for name, _ in model.get_input_specs()] == ["image", "instruction"]
