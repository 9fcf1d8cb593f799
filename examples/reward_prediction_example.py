"""Two computation tasks in one agent: actor-critic on Catch plus UNREAL's reward prediction.

    python examples/reward_prediction_example.py [--num-games 150] [--no-aux]

Each agent acts with ``RL`` (SimpleAC) and also learns ``reward_prediction`` on the
rewarding steps only, through the perception net both models share; ``--no-aux`` trains
the RL task alone, for comparison. The set-up is ``flare.experiments.catch``'s.
"""

from __future__ import annotations

import argparse

from flare.experiments.catch import report, train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-games", type=int, default=150, help="games per agent")
    parser.add_argument("--num-agents", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-aux", action="store_true", help="the RL task alone")
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    manager = train(
        args.num_games, args.seed, args.num_agents, aux=not args.no_aux, log_dir=args.log_dir
    )
    print(report(manager))
