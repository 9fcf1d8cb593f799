"""The grid world learned in server mode and in client mode, in one run on this machine.

Server mode: 16 agents (8 per process) step the Node simulator's sessions over
``RemoteEnv``. Client mode: the simulator drives its own loop, 16 Act streams from one
Node process (``client.js --streams 16``). Same model, algorithm, seeds and budget
(16 x 1500 games, batches holding every agent); each stops once the mean return of 100
games (success minus wrong square) reaches ``--target``. Writes
benchmarks/results/gridworld_modes.json.

    python benchmarks/gridworld_modes.py [--target 0.5] [--level 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from flare.bridge.launch import gridworld_command, simulator_process
from flare.experiments import gridworld

RESULTS = Path(__file__).resolve().parent / "results" / "gridworld_modes.json"


def summary(manager) -> dict[str, object]:
    last = [r.return_ for r in manager.stats[-100:]]
    return {
        "games": len(manager.stats),
        "env_steps": manager.env_steps,
        "wall_s": round(manager.wall_s, 1),
        "reached_target": manager.reached_target,
        "success_last_100": sum(r > 0 for r in last) / len(last),
        "wrong_last_100": sum(r < 0 for r in last) / len(last),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--level", default="1")
    args = parser.parse_args()
    with simulator_process(gridworld_command()) as address:
        server = gridworld.train(
            address, level=args.level, num_agents=16, num_games=1500,
            stop_at_success=args.target, seed=0, batch_wait_s=5.0, agents_per_process=8,
        )  # fmt: skip
    client = gridworld.train_client_mode(
        level=args.level, num_agents=16, num_games=1500, stop_at_success=args.target,
        seed=0, batch_wait_s=5.0,
    )  # fmt: skip
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setup": f"level {args.level}, 16 agents x 1500 games, seed 0, stop at a mean "
        f"return of {args.target} over 100 games",
        "server_mode": summary(server),
        "client_mode": summary(client),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
