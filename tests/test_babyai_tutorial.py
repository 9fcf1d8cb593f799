"""The language-navigation tutorial's example runs end to end: `flare serve minigrid`, GFT
agents with memory over RemoteEnv sessions, PPO on whole runs, a checkpoint and a curve."""

import pytest

from flare.bridge.launch import simulator_process
from flare.common.curves import plot_reward_curve, read_games
from flare.experiments import babyai as babyai_gft

LEVEL = "BabyAI-GoToLocalS5N2-v0"


@pytest.mark.slow
def test_gft_agents_train_over_grpc(tmp_path):
    with simulator_process(babyai_gft.serve_minigrid(LEVEL)) as address:
        manager = babyai_gft.train(
            address,
            num_agents=2,
            num_games=3,
            stop_at_success=None,
            sample_interval=8,
            log_dir=str(tmp_path),
            model_dir=str(tmp_path),
            print_interval_s=0,
        )
    assert len(manager.stats) == 6
    assert all(r.length > 0 for r in manager.stats)
    assert any("RL/cost" in r.costs for r in manager.stats)  # PPO learned on the runs
    assert (tmp_path / "RL.pt").exists()
    log = read_games(tmp_path)
    assert len(log) == 6 and set(log.success) <= {0.0, 1.0}
    png = plot_reward_curve(tmp_path, tmp_path / "curve.png", success=True)
    assert png.exists()
    assert babyai_gft.summary(manager).startswith("6 games")


def test_the_blind_control_ignores_the_instruction():
    import torch

    from flare.env_zoo.minigrid_env import VOCABULARY, tokenize

    torch.manual_seed(0)
    blind = babyai_gft.BlindGFTModelAC((3, 7, 7), 16, len(VOCABULARY), 3)
    image = torch.randint(0, 11, (1, 3, 7, 7), dtype=torch.uint8)
    state = {"state": torch.zeros(1, blind.hidden_size)}
    logits = [
        blind.policy({"image": image, "instruction": torch.from_numpy(tokenize(m))[None]}, state)[
            0
        ]["action"].logits
        for m in ("go to the red ball", "go to the blue box")
    ]
    torch.testing.assert_close(logits[0], logits[1])


@pytest.mark.slow
def test_gft_agents_learn_to_follow_the_instruction():
    """With the wrong-object rule an agent that ignores the words wins about half the
    games (the blind control's best 100 games in 16,000: 66%); the GFT agent must win 75%
    of 100 games within 16 x 600 games. Full batches (batch_wait_s=1) make a seeded run
    repeat exactly on one set of libraries, but a new torch, numpy or minigrid changes
    its games (seed 0 reached 80% after 6,431 games once and after 11,183 now), so the
    target holds with room across seeds: 75% first after 7,185 (seed 0), 5,433 (seed 1)
    and 5,034 games (seed 2)."""
    with simulator_process(babyai_gft.serve_minigrid(LEVEL)) as address:
        manager = babyai_gft.train(
            address,
            num_agents=16,
            num_games=600,
            stop_at_success=0.75,
            batch_wait_s=1.0,
            print_interval_s=0,
        )
    assert manager.reached_target, babyai_gft.summary(manager, 0.75)
