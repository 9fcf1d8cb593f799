"""Language-directed navigation: GFT agents with memory learn a BabyAI GoTo level over gRPC.

The level runs in a simulator server (``flare serve minigrid --level LEVEL``, see
``serve_minigrid``); each agent opens a session with ``RemoteEnv`` and sees ``{image:
minigrid's 7x7 egocentric symbolic view, instruction: token ids of "go to the red
ball"}``. The model is ``GFTModelAC``: the instruction's vector generates transformations
of every position's visual feature, a GRU carries memory across steps, and PPO learns on
whole runs. See docs/tutorial-language-navigation.md.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRNNRLAgent
from flare.algorithm_zoo.ppo import PPO
from flare.bridge import RemoteEnv
from flare.bridge.launch import flare_command
from flare.common.curves import moving_average
from flare.experiments import train_on_env
from flare.framework.agent import OnlineHelper
from flare.framework.env_spec import Language
from flare.framework.manager import Manager
from flare.model_zoo.gft_models import GFTModelAC

LEVEL = "BabyAI-GoToLocalS5N2-v0"
WINDOW = 100


def serve_minigrid(level: str, wrong_object_ends: bool = True) -> list[str]:
    """The command of ``flare serve minigrid --level LEVEL [--wrong-object-ends]`` on a
    free loopback port."""
    strict = ["--wrong-object-ends"] if wrong_object_ends else []
    serve = [*flare_command(), "serve", "minigrid", "--level", level, *strict]
    return [*serve, "--address", "127.0.0.1:0"]


class BlindGFTModelAC(GFTModelAC):
    """The control: the same model, every instruction read as padding (it still sees)."""

    def read_instruction(self, tokens: torch.Tensor) -> torch.Tensor:
        return super().read_instruction(torch.zeros_like(tokens))


def add_gft_flags(parser: argparse.ArgumentParser, num_games: int) -> None:
    """The flags the GFT examples share (the BabyAI and the 3D rooms' ones)."""
    parser.add_argument("--num-agents", type=int, default=16)
    parser.add_argument("--num-games", type=int, default=num_games, help="games per agent")
    parser.add_argument(
        "--success", type=float, default=0.9, help="stop at this success rate (0: play every game)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-interval", type=int, default=16, help="steps per agent per learn")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--blind", action="store_true", help="control: hide the instruction")
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    parser.add_argument("--model-dir", help="save the model to MODEL_DIR/RL.pt")


def build_algorithm(
    address: str,
    lr: float = 3e-4,
    minibatch_size: int = 64,
    blind: bool = False,
    pixels: bool = False,
) -> PPO:
    """GFTModelAC sized from the simulator's spec, learned by PPO on whole runs;
    ``pixels`` for a camera's frames (the 3D rooms) instead of symbolic cells."""
    probe = RemoteEnv(address)
    spec = probe.spec()
    probe.close()
    image, instruction = spec.observations
    if not isinstance(instruction.kind, Language):
        raise ValueError(f"the simulator's second observation is not language: {instruction}")
    model_class = BlindGFTModelAC if blind else GFTModelAC
    model = model_class(
        image_shape=image.shape,
        instruction_length=instruction.shape[0],
        vocabulary_size=instruction.kind.vocabulary_size,
        num_actions=spec.action_dims()["action"],
        pixels=pixels,
    )
    return PPO(
        model,
        discount_factor=0.99,
        gae_lambda=0.95,
        num_epochs=4,
        minibatch_size=minibatch_size,
        entropy_weight=0.01,
        optim=(optim.Adam, dict(lr=lr)),
    )


def train(
    address: str,
    num_agents: int = 16,
    num_games: int = 2_000,
    stop_at_success: float | None = 0.9,
    seed: int = 0,
    sample_interval: int = 16,
    log_dir: str | None = None,
    model_dir: str | None = None,
    batch_wait_s: float = 0.05,
    print_interval_s: float = 30.0,
    lr: float = 3e-4,
    minibatch_size: int = 64,
    blind: bool = False,
    pixels: bool = False,
    learn_beside_acting: bool = False,
    **run_kwargs: Any,
) -> Manager:
    """Train ``num_agents`` GFT agents against the simulator at ``address``;
    ``run_kwargs`` go to ``train_on_env`` (``stop_after_s``, ``agents_per_process``...).
    ``learn_beside_acting``: PPO's updates run on a thread of their own while the agents
    act (on weights one update old; PPO's ratios use the policy that acted)."""
    torch.manual_seed(seed)
    settings = dict(
        algorithm=build_algorithm(address, lr, minibatch_size, blind, pixels),
        agent_helper=OnlineHelper,
        sample_interval=sample_interval,
        num_agents=num_agents,
        batch_wait_s=batch_wait_s,
        learn_beside_acting=learn_beside_acting,
    )
    return train_on_env(
        {"RL": settings}, RemoteEnv, dict(address=address), num_agents, num_games, seed,
        window=WINDOW, log_dir=log_dir, print_interval_s=print_interval_s,
        agent_factory=SimpleRNNRLAgent, stop_at_success_rate=stop_at_success,
        model_dir=model_dir, **run_kwargs,
    )  # fmt: skip


def summary(manager: Manager, target: float = 0.9) -> str:
    """Games, steps and wall time; when the success over WINDOW games first reached
    ``target``; the success over the last WINDOW and the last 1,000 games."""
    stats = manager.stats
    if not stats:
        return "no game finished"
    wins = np.array([r.success for r in stats], dtype=float)
    steps = np.cumsum([r.length for r in stats])
    rates = moving_average(wins, WINDOW)[WINDOW - 1 :]
    hits = np.flatnonzero(rates >= target)
    reached = (
        f"{target:.0%} of {WINDOW} games first after {hits[0] + WINDOW} games, "
        f"{steps[hits[0] + WINDOW - 1]:,} steps, {stats[hits[0] + WINDOW - 1].wall_s:.0f} s; "
        if len(hits)
        else f"never {target:.0%} of {WINDOW} games; "
    )
    return (
        f"{len(stats)} games, {steps[-1]:,} steps, {stats[-1].wall_s:.0f} s; {reached}"
        f"success over the last {min(WINDOW, len(stats))} games {wins[-WINDOW:].mean():.0%}, "
        f"over the last {min(1000, len(stats))} {wins[-1000:].mean():.1%}"
    )
