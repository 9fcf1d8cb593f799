"""Learn the bundled Node.js grid world over gRPC: go to the square the instruction names.

The simulator is written in JavaScript (simulators/gridworld) and speaks FLARE's wire
contract; the agents see its top-down image and read its instruction ("go to the red
square", as token ids). Without --address a local simulator is started for the run.

    python examples/gridworld_example.py            # level 1 until 90% success
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.bridge.launch import gridworld_command, simulator_process
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
) -> Manager:
    torch.manual_seed(seed)
    probe = RemoteEnv(address, level=level)
    spec = probe.spec()
    probe.close()
    image, instruction = (s for s in spec.observations)
    assert isinstance(instruction.kind, Language), instruction
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
    manager = Manager(ct_settings, dict(log_dir=log_dir, model_dir=model_dir))
    for index in range(num_agents):
        agent = SimpleRLAgent(num_games)
        agent.set_env(RemoteEnv, address=address, level=level, seed=seed * 1000 + index)
        manager.add_agent(agent)
    # returns are +1 (success), -1 (wrong square) or 0 (time-out), so a mean return of
    # s over the window means at least s of those games succeeded
    manager.start(stop_at_mean_return=stop_at_success)
    return manager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="a running grid world (default: start a local one)")
    parser.add_argument("--level", default="1", choices=["1", "2", "3"])
    parser.add_argument("--num-agents", type=int, default=16)
    parser.add_argument("--num-games", type=int, default=400, help="games per agent")
    parser.add_argument("--stop-at-success", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    parser.add_argument("--model-dir", help="save the model to MODEL_DIR/RL.pt at the end")
    args = parser.parse_args()

    def run(address: str) -> Manager:
        return train(
            address,
            args.level,
            args.num_agents,
            args.num_games,
            args.stop_at_success,
            args.seed,
            args.log_dir,
            args.model_dir,
        )

    if args.address:
        manager = run(args.address)
    else:
        with simulator_process(gridworld_command()) as address:
            print(f"local grid world on {address}", flush=True)
            manager = run(address)
    print(
        f"level {args.level}: {len(manager.stats)} games, success over the last {WINDOW}: "
        f"{success_rate(manager):.0%}"
    )


if __name__ == "__main__":
    main()
