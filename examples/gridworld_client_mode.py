"""Learn the Node.js grid world in client mode: the simulator drives its own loop and
plays through the learner's Act stream (a game engine's way), instead of being stepped.

The learner takes 16 Act streams; one Node process (``simulators/gridworld/client.js
--streams 16``) plays them, stream i seeded as agent i is in examples/gridworld_example.py,
with the same model and algorithm (``flare.experiments.gridworld``).

    python examples/gridworld_client_mode.py     # level 1, to a mean return of 0.5

The default target is the one docs/act.md compares both modes at (success minus wrong
square, over 100 games); raise it with --stop-at-success (0.9: 90% success at least).
"""

from __future__ import annotations

import argparse

from flare.experiments.gridworld import WINDOW, success_rate, train_client_mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", default="1", choices=["1", "2", "3"])
    parser.add_argument("--num-agents", type=int, default=16, help="Act streams")
    parser.add_argument("--num-games", type=int, default=1500, help="games per stream")
    parser.add_argument("--stop-at-success", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", help="keep the run directory here (games.csv, checkpoints)")
    args = parser.parse_args()
    manager = train_client_mode(
        args.level,
        args.num_agents,
        args.num_games,
        args.stop_at_success,
        args.seed,
        args.run_dir,
        batch_wait_s=5.0,
    )
    print(
        f"{len(manager.stats)} games in {manager.wall_s:.0f} s; success over the last "
        f"{WINDOW}: {success_rate(manager):.0%}"
        + (" (target reached)" if manager.reached_target else "")
    )


if __name__ == "__main__":
    main()
