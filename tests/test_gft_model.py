"""GFTModelAC: specs, the instruction reader on padded batches, the guided feature
transformation against a hand-worked case, memory, and gradients into every part."""

import numpy as np
import pytest
import torch

from flare.algorithm_zoo.ppo import PPO
from flare.env_zoo.minigrid_env import VOCABULARY, tokenize
from flare.model_zoo.gft_models import GFTModelAC

LENGTH = 16


def model(**kwargs):
    torch.manual_seed(0)
    return GFTModelAC((3, 7, 7), LENGTH, len(VOCABULARY), 3, **kwargs)


def inputs(missions, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 11, size=(len(missions), 3, 7, 7)).astype(np.uint8)
    tokens = np.stack([tokenize(m, LENGTH) for m in missions])
    return {"image": torch.from_numpy(image), "instruction": torch.from_numpy(tokens)}


def test_specs_follow_the_simulator():
    m = model(hidden_size=32)
    assert m.get_input_specs() == [
        ("image", dict(shape=(3, 7, 7), dtype="uint8")),
        ("instruction", dict(shape=[LENGTH], dtype="int64")),
    ]
    assert m.get_state_specs() == [("state", dict(shape=[32]))]
    PPO(m)  # an algorithm accepts it: the names are consistent


def test_instructions_of_different_lengths_read_as_they_would_alone():
    m = model()
    missions = ["go to the red ball", "go to a box", "go to the grey key"]
    batch = m.read_instruction(inputs(missions)["instruction"])
    for row, mission in enumerate(missions):
        alone = m.read_instruction(inputs([mission])["instruction"])
        torch.testing.assert_close(batch[row : row + 1], alone)
    # the words matter, not only their number
    assert not torch.allclose(
        batch[0], m.read_instruction(inputs(["go to the red key"])["instruction"])[0]
    )


def test_the_transformation_is_applied_at_every_position():
    m = model(visual_channels=2, num_transforms=1)
    # T = [[2, 0 | 1], [0, -1 | 0]]: f0 -> relu(2 f0 + 1), f1 -> relu(-f1), the same everywhere
    with torch.no_grad():
        m.transform_generator.weight.zero_()
        m.transform_generator.bias.copy_(torch.tensor([2.0, 0, 1, 0, -1, 0]))
    features = torch.tensor([[[[1.0, -3.0]], [[2.0, -4.0]]]])  # [1, 2 channels, 1, 2]
    out = m.transform(features, torch.zeros(1, m.instruction_reader.hidden_size))
    assert out.tolist() == [[[[3.0, 0.0]], [[0.0, 4.0]]]]


def test_the_instruction_changes_what_the_model_sees_and_does():
    m = model()
    a = inputs(["go to the red ball"])
    b = {**a, "instruction": inputs(["go to the blue box"])["instruction"]}
    state = {"state": torch.zeros(1, m.hidden_size)}
    grounded_a = m.memory_features(a)
    assert not torch.allclose(grounded_a, m.memory_features(b))
    dists_a, _ = m.policy(a, state)
    dists_b, _ = m.policy(b, state)
    assert not torch.allclose(dists_a["action"].logits, dists_b["action"].logits)


def test_memory_carries_what_was_seen():
    m = model()
    first, second = inputs(["go to the red ball"], seed=1), inputs(["go to the red ball"], seed=2)
    zero = {"state": torch.zeros(1, m.hidden_size)}
    _, after_first = m.policy(first, zero)
    direct, _ = m.policy(second, zero)
    remembered, _ = m.policy(second, after_first)
    assert after_first["state"].shape == (1, m.hidden_size)
    assert not torch.allclose(direct["action"].logits, remembered["action"].logits)


def test_gradients_reach_words_cells_transforms_and_memory():
    m = model()
    batch = inputs(["go to the red ball", "go to a box"])
    memory = {"state": torch.randn(2, m.hidden_size)}  # (from zeros, W_hh gets no gradient)
    dists, values, _ = m.policy_and_value(batch, memory)
    (values["v_value"].sum() + dists["action"].logits.sum()).backward()
    for name in ("word_embedding", "cell_embedding", "transform_generator", "memory", "vision"):
        grads = [p.grad for n, p in m.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), name


@pytest.mark.parametrize("bad", [dict(num_transforms=0), dict(num_actions=0)])
def test_bad_sizes_are_named(bad):
    kwargs = dict(image_shape=(3, 7, 7), instruction_length=4, vocabulary_size=10, num_actions=3)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        GFTModelAC(**kwargs)


def test_replayed_memory_is_the_memory_the_agent_acted_with():
    """What PPO's first epoch sees: with unchanged weights, the states recomputed from a
    run's first stored state, and so the policy, equal those of acting step by step."""
    from flare.framework.memory import unroll_states

    m = model()
    batch = inputs(["go to the red ball"] * 10)
    state, stored, acted = torch.zeros(1, m.hidden_size), [], []
    with torch.no_grad():
        for t in range(10):
            stored.append(state)
            step = {k: v[t : t + 1] for k, v in batch.items()}
            dists, next_states = m.policy(step, {"state": state})
            acted.append(dists["action"].logits.log_softmax(-1))
            state = next_states["state"]
        before, _ = unroll_states(m, batch, {"state": torch.cat(stored)}, [4, 6])
        replayed, _, _ = m.policy_and_value(batch, before)
    torch.testing.assert_close(before["state"], torch.cat(stored))
    torch.testing.assert_close(replayed["action"].logits.log_softmax(-1), torch.cat(acted))


def test_pixels_read_a_camera_frame():
    """``pixels=True``: a 60x80 RGB frame (MiniWorld's) through strided convolutions to a
    7x10 grid that GFT transforms; the words and the frame both change the policy, and
    gradients reach the convolutions."""
    torch.manual_seed(0)
    m = GFTModelAC((3, 60, 80), 5, len(VOCABULARY), 3, pixels=True)
    assert m.see(torch.zeros(1, 3, 60, 80, dtype=torch.uint8)).shape == (1, 16, 7, 10)
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 256, size=(2, 3, 60, 80)).astype(np.uint8))
    tokens = torch.from_numpy(np.stack([tokenize(m_, 5) for m_ in ["go to the red ball"] * 2]))
    states = {"state": torch.zeros(2, m.hidden_size)}
    dists, values, _ = m.policy_and_value({"image": frames, "instruction": tokens}, states)
    assert dists["action"].probs.shape == (2, 3) and values["v_value"].shape == (2, 1)
    assert not torch.allclose(dists["action"].logits[0], dists["action"].logits[1])
    other = torch.from_numpy(np.stack([tokenize("go to the blue key", 5)] * 2))
    reread, _, _ = m.policy_and_value({"image": frames, "instruction": other}, states)
    assert not torch.allclose(dists["action"].logits, reread["action"].logits)
    values["v_value"].sum().backward()
    assert m.vision[0].weight.grad is not None and m.vision[0].weight.grad.abs().sum() > 0


def test_ppo_learns_a_pixel_signal_through_the_whole_model():
    """The 3D rooms' learner end to end, in-process: from random frames, a reward for
    one action (and nothing for the others) moves the policy from a third of the steps
    to over 85% of them in the last 3 of 20 PPO updates on whole runs. Guards the pixel path
    (convolutions, GFT, GRU replay, heads read off the replayed states)."""
    torch.manual_seed(0)
    m = GFTModelAC((3, 24, 32), 5, len(VOCABULARY), 3, pixels=True, hidden_size=64)
    ppo = PPO(m, num_epochs=4, minibatch_size=64, entropy_weight=0.01)
    runs, steps, rewarded = 16, 16, 2
    size = runs * steps
    shares = []
    for _ in range(20):
        inputs = {
            "image": torch.randint(0, 256, (size, 3, 24, 32), dtype=torch.uint8),
            "instruction": torch.randint(1, len(VOCABULARY), (size, 5)),
        }
        states = torch.zeros(size, 64)
        actions = torch.zeros(size, 1, dtype=torch.long)
        log_probs = torch.zeros(size, 1)
        state = torch.zeros(runs, 64)
        with torch.no_grad():
            for t in range(steps):
                rows = torch.arange(runs) * steps + t
                states[rows] = state
                out, next_states = ppo.predict(
                    {k: v[rows] for k, v in inputs.items()}, {"state": state}
                )
                actions[rows] = out["action"].view(-1, 1)
                log_probs[rows] = out["behavior_log_prob"].view(-1, 1)
                state = next_states["state"]
        reward = (actions == rewarded).float()
        shares.append(reward.mean().item())
        ppo.update(
            inputs=inputs,
            next_inputs={k: v.roll(-1, 0) for k, v in inputs.items()},
            states={"state": states},
            next_states={"state": states},
            actions={"action": actions, "behavior_log_prob": log_probs},
            rewards={"reward": reward},
            next_alive={"alive": torch.ones(size, 1)},
            sequence_lengths=[steps] * runs,
        )
    assert shares[0] < 0.5
    assert sum(shares[-3:]) / 3 > 0.85, shares
