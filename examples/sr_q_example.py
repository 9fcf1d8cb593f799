"""Successor-feature Q-learning (Q = psi . w, psi learned by TD on phi) on CartPole.

The reward weights w are fitted by regressing the reward on phi; acting is epsilon-greedy on
Q with a target network, as in DQN. The settings are
``flare.experiments.cartpole.train_sr_q``'s.

    python examples/sr_q_example.py [--prioritized] [--reconstruction 1.0]
"""

from __future__ import annotations

import argparse

from flare.experiments.cartpole import parse_args, report, train_sr_q


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prioritized", action="store_true", help="prioritized replay")
    parser.add_argument(
        "--reconstruction", type=float, default=0.0, help="weight of phi's decoder cost"
    )


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], num_games=300, extra=_extra_flags)
    manager = train_sr_q(
        args.num_games,
        args.seed,
        args.prioritized,
        reconstruction_cost_weight=args.reconstruction,
        log_dir=args.log_dir,
    )
    print(report(manager))
