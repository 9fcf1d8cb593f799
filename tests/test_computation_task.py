import numpy as np
import pytest
import torch

from flare.framework.batch import LearnBatch
from flare.framework.computation_task import ComputationTask
from flare.framework.specs import parse_specs


def _learn_batch(n: int, offset: float = 0.0) -> LearnBatch:
    sensor = np.arange(2 * n, dtype=np.float64).reshape(n, 2) + offset
    return LearnBatch(
        inputs={"sensor": sensor},
        next_inputs={"sensor": sensor + 1},
        states={},
        next_states={},
        next_alive={"alive": np.ones((n, 1), np.float32)},
        actions={"action": np.zeros((n, 1), np.int64)},
        next_actions={"action": np.zeros((n, 1), np.int64)},
        rewards={"reward": np.full((n, 1), 10.0, np.float32)},
    )


def _spy_on_predict(alg) -> dict:
    """What the algorithm's predict is given (its inputs, by name)."""
    seen: dict = {}

    def spy(inputs, states):
        seen.update(inputs)
        return {"action": torch.zeros(len(inputs["sensor"]), 1, dtype=torch.int64)}, states

    alg.predict = spy
    return seen


def test_predict_numpy_in_numpy_out(echo_alg):
    ct = ComputationTask("RL", echo_alg)
    inputs = {"sensor": np.array([[1.0, 2.0], [3.0, 4.5]])}  # float64 in: converted per spec
    actions, states, behavior = ct.predict(inputs, {})
    assert behavior == {}
    assert isinstance(actions["action"], np.ndarray)
    assert actions["action"].dtype == np.int64
    assert actions["action"].tolist() == [[3], [8]]  # round(7.5) == 8 (banker's rounding)
    assert states == {}


def test_inputs_reach_the_algorithm_as_tensors_of_the_spec_dtype(echo_alg):
    seen = _spy_on_predict(echo_alg)
    ComputationTask("RL", echo_alg).predict({"sensor": np.ones((3, 2), np.float64)}, {})
    assert isinstance(seen["sensor"], torch.Tensor)
    assert seen["sensor"].dtype == torch.float32
    assert seen["sensor"].shape == (3, 2)


def test_uint8_pixels_for_a_float_input_arrive_scaled_to_0_1(echo_alg):
    seen = _spy_on_predict(echo_alg)
    pixels = np.array([[0, 255], [51, 128]], np.uint8)
    ComputationTask("RL", echo_alg).predict({"sensor": pixels}, {})
    assert seen["sensor"].dtype == torch.float32
    # exactly what numpy's float32 / 255 gives (the frames' floats before they were bytes)
    np.testing.assert_array_equal(seen["sensor"].numpy(), pixels.astype(np.float32) / 255.0)


def test_uint8_for_a_uint8_input_arrives_as_bytes(echo_alg):
    seen = _spy_on_predict(echo_alg)
    echo_alg.input_specs = parse_specs([("sensor", dict(shape=[2], dtype="uint8"))], "input")
    ComputationTask("RL", echo_alg).predict({"sensor": np.array([[3, 200]], np.uint8)}, {})
    assert seen["sensor"].dtype == torch.uint8
    assert seen["sensor"].tolist() == [[3, 200]]


def test_learn_returns_per_sample_costs(echo_alg):
    ct = ComputationTask("RL", echo_alg)
    costs = ct.learn(_learn_batch(4))
    assert costs["cost"].shape == (4, 1)
    np.testing.assert_allclose(costs["cost"][:, 0], 10.0 + np.array([0, 2, 4, 6]))


def test_wrong_shape_names_the_field(echo_alg):
    ct = ComputationTask("RL", echo_alg)
    with pytest.raises(ValueError, match=r"inputs\['sensor'\].*\(3,\).*\(2,\)"):
        ct.predict({"sensor": np.zeros((1, 3))}, {})


def test_missing_input_names_the_field(echo_alg):
    ct = ComputationTask("RL", echo_alg)
    with pytest.raises(KeyError, match="lacks 'sensor'"):
        ct.predict({"camera": np.zeros((1, 2))}, {})


def test_state_dict_round_trip(echo_alg):
    ct = ComputationTask("RL", echo_alg)
    state = ct.state_dict()
    with torch.no_grad():
        echo_alg.model.scale.fill_(5.0)
    ct.load_state_dict(state)
    assert echo_alg.model.scale.item() == 1.0


def test_learn_batch_concat_keeps_order():
    joined = LearnBatch.concat([_learn_batch(2), _learn_batch(3, offset=100)])
    assert joined.size == 5
    assert joined.inputs["sensor"][2, 0] == 100


def test_cts_whose_models_share_parameters_share_one_lock():
    from flare.algorithm_zoo.simple_algorithms import SimpleAC
    from flare.framework.computation_task import build_computation_tasks
    from flare.model_zoo.simple_models import SimpleModelAC

    shared = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())

    def alg(body):
        return SimpleAC(SimpleModelAC((4,), 2, body))

    cts = build_computation_tasks(
        {"RL": alg(shared), "Aux": alg(shared), "Other": alg(torch.nn.Linear(4, 8))}
    )
    assert cts["RL"].lock is cts["Aux"].lock  # one perception net: updates never interleave
    assert cts["Other"].lock is not cts["RL"].lock
