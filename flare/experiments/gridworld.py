"""The bundled Node.js grid world over gRPC: go to the square the instruction names.

The simulator is written in JavaScript (simulators/gridworld) and speaks FLARE's wire
contract; the agents see its top-down image and read its instruction ("go to the red
square", as token ids) with ``ImageInstructionModelAC``, learned by ``SimpleAC``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.optim as optim

from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.experiments import train_on_env
from flare.framework.agent import OnlineHelper
from flare.framework.env_spec import Language
from flare.framework.manager import Manager
from flare.model_zoo.image_language_models import ImageInstructionModelAC

WINDOW = 100


def success_rate(manager: Manager, window: int = WINDOW) -> float:
    """Share of the last ``window`` games that reached the named square (return +1)."""
    returns = [record.return_ for record in manager.stats[-window:]]
    return float(np.mean([r > 0 for r in returns])) if returns else 0.0


def train(
    address: str,
    level: str = "1",
    num_agents: int = 16,
    num_games: int = 400,
    stop_at_success: float | None = 0.9,
    seed: int = 0,
    log_dir: str | None = None,
    model_dir: str | None = None,
    batch_wait_s: float = 0.01,
    agents_per_process: int = 1,
) -> Manager:
    """Train ``num_agents`` agents against the grid world at ``address`` on ``level``,
    stopping once the mean return of 100 games reaches ``stop_at_success`` (if given);
    ``agents_per_process`` agents share a process (with full batches: the same games)."""
    torch.manual_seed(seed)
    probe = RemoteEnv(address, level=level)
    spec = probe.spec()
    probe.close()
    image, instruction = (s for s in spec.observations)
    if not isinstance(instruction.kind, Language):
        raise ValueError(f"the simulator's second observation is not language: {instruction}")
    model = ImageInstructionModelAC(
        image_shape=image.shape,
        instruction_length=instruction.shape[0],
        vocabulary_size=instruction.kind.vocabulary_size,
        num_actions=spec.action_dims()["action"],
    )
    # a little entropy keeps the policy exploring until it has found what the words mean
    alg = SimpleAC(
        model, discount_factor=0.95, entropy_weight=0.02, optim=(optim.Adam, dict(lr=1e-3))
    )
    ct_settings = {
        "RL": dict(
            algorithm=alg,
            agent_helper=OnlineHelper,
            sample_interval=4,
            num_agents=num_agents,
            batch_wait_s=batch_wait_s,
        )
    }
    # returns are +1 (success), -1 (wrong square) or 0 (time-out), so a mean return of
    # s over the window means at least s of those games succeeded
    return train_on_env(
        ct_settings, RemoteEnv, dict(address=address, level=level), num_agents, num_games,
        seed, stop_at_success, log_dir=log_dir, print_interval_s=10.0, model_dir=model_dir,
        agents_per_process=agents_per_process,
    )  # fmt: skip
