"""Snapshots of agents' state: nested values and arrays saved without pickle, and helpers
that come back exactly as they were (the same samples drawn after a restore)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flare.common.snapshots import (
    experiences_from,
    experiences_state,
    load_tree,
    save_tree,
)
from flare.framework.agent_helper import ExpReplayHelper, OnlineHelper
from flare.framework.episode_replay import (
    LIVE,
    PREDICT,
    STORE,
    Call,
    EpisodeLog,
    EpisodeReplay,
    InFlight,
    ReplayDiverged,
    SavedEpisode,
    checksum,
)
from flare.framework.experience import DataKeys, Experience
from flare.framework.outcomes import NextStep


def test_a_tree_comes_back_whole_and_is_read_without_pickle(tmp_path):
    tree = {
        "ints": [0, -1, 2**127 + 5],  # (a PCG64 state's ints are 128-bit)
        "floats": (1.5, math.inf),
        "text": "é",
        "none": None,
        "flag": True,
        "nested": {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": [np.float32(2.5)]},
        "by_number": {3: "three"},
    }
    path = tmp_path / "tree.npz"
    save_tree(path, tree)
    back = load_tree(path)
    assert back["ints"] == tree["ints"] and back["floats"] == tree["floats"]
    assert back["text"] == "é" and back["none"] is None and back["flag"] is True
    assert (
        back["nested"]["a"].dtype == np.int16 and (back["nested"]["a"] == tree["nested"]["a"]).all()
    )
    assert back["nested"]["b"][0] == 2.5 and back["by_number"] == {3: "three"}
    with pytest.raises(TypeError, match="Python objects"):
        save_tree(path, {"x": np.array([object()])})


def _experience(i: int, alive: NextStep = NextStep.CONTINUES) -> Experience:
    data = {"sensor": np.full(2, i, np.float32), "action": np.array([i % 2]), "reward": np.ones(1)}
    return Experience(data=data, alive=alive, run_ends=i == 3)


def test_experiences_travel_as_columns_or_rows():
    same = [_experience(i) for i in range(5)]
    state = experiences_state(same)
    assert "columns" in state and state["columns"]["sensor"].shape == (5, 2)
    back = experiences_from(state)
    assert [e.run_ends for e in back] == [e.run_ends for e in same]
    assert all(
        (a.data["sensor"] == b.data["sensor"]).all() for a, b in zip(back, same, strict=True)
    )
    mixed = [*same, Experience(data={"other": np.zeros(1)}, alive=NextStep.GAME_OVER)]
    back = experiences_from(experiences_state(mixed))
    assert "rows" in experiences_state(mixed) and back[-1].alive is NextStep.GAME_OVER
    assert experiences_from(experiences_state([])) == []


KEYS = DataKeys(inputs=("sensor",), actions=("action",), states=(), rewards=("reward",))


@pytest.mark.parametrize("prioritized", [False, True])
def test_a_restored_replay_helper_draws_the_same_samples(prioritized):
    def helper() -> ExpReplayHelper:
        made = ExpReplayHelper("RL", None, buffer_capacity=8, num_experiences=3,  # type: ignore[arg-type]
                               prioritized=prioritized, beta_anneal_learns=10)  # fmt: skip
        made.bind(KEYS, seed=7)
        return made

    original = helper()
    for i in range(11):  # (the ring wraps)
        original.add_experience(_experience(i))
    original.counter, original.num_learns = 11, 4
    original.rng.random()
    copy = helper()
    copy.load_state_dict(original.state_dict())
    assert copy.counter == 11 and copy.num_learns == 4
    assert copy.current_beta == original.current_beta
    first, second = original.make_batch(), copy.make_batch()
    assert first is not None and second is not None
    assert (first.inputs["sensor"] == second.inputs["sensor"]).all()
    assert (first.sample_weights == second.sample_weights).all()
    assert original.rng.random() == copy.rng.random()


def test_an_online_helper_keeps_its_run_so_far():
    original = OnlineHelper("RL", None, sample_interval=4)  # type: ignore[arg-type]
    original.bind(KEYS, seed=1)
    for i in range(3):
        original.add_experience(_experience(i))
    copy = OnlineHelper("RL", None, sample_interval=4)  # type: ignore[arg-type]
    copy.bind(KEYS, seed=1)
    copy.load_state_dict(original.state_dict())
    assert [e.data["sensor"][0] for e in copy.buffer] == [0, 1, 2]
    copy.load_state_dict(original.state_dict(with_buffers=False))  # (buffers left as they are)
    assert len(copy.buffer) == 3


def test_an_episode_log_replays_its_calls_then_hands_over(tmp_path):
    obs = {"sensor": np.ones(2, np.float32)}
    log = EpisodeLog({"seed": 3})
    log.calls += [
        Call(PREDICT, "RL", checksum(obs, {}), ({"action": np.array([1])}, {})),
        Call(STORE, "RL", checksum(obs), None),
        Call(PREDICT, "RL", checksum(obs, {}), ({"action": np.array([0])}, {})),
    ]
    save_tree(tmp_path / "e.npz", log.state(InFlight(STORE, "RL")))
    saved = SavedEpisode.from_state(load_tree(tmp_path / "e.npz"))
    assert saved.log.start == {"seed": 3} and saved.in_flight == InFlight(STORE, "RL")
    replay = EpisodeReplay(saved)
    actions, _ = replay.answer(PREDICT, "RL", obs, {})
    assert actions["action"][0] == 1
    assert replay.answer(STORE, "RL", obs) is None
    assert replay.answer(PREDICT, "RL", obs, {})[0]["action"][0] == 0
    assert replay.answer(STORE, "RL", obs) is LIVE  # the call that was waiting
    other = EpisodeReplay(saved)
    with pytest.raises(ReplayDiverged, match="came with other data"):
        other.answer(PREDICT, "RL", {"sensor": np.zeros(2, np.float32)}, {})
    with pytest.raises(ReplayDiverged, match="made a store call"):
        EpisodeReplay(saved).answer(STORE, "RL", obs)
