"""Learn the bundled Node.js grid world over gRPC: go to the square the instruction names.

The simulator is written in JavaScript (simulators/gridworld) and speaks FLARE's wire
contract; the agents see its top-down image and read its instruction ("go to the red
square", as token ids). Without --address a local simulator is started for the run. The settings are
``flare.experiments.gridworld``'s.

    python examples/gridworld_example.py            # level 1 until 90% success
"""

from __future__ import annotations

import argparse

from flare.bridge.launch import gridworld_command, simulator_process
from flare.experiments.gridworld import WINDOW, success_rate, train
from flare.framework.manager import Manager


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
