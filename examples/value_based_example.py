"""The value-based algorithms on CartPole with replay: DQN, SARSA, C51, QR-DQN or IQN.

All five share the model, the replay set-up and the agents; only the learning objective
differs (``flare.experiments.cartpole``):

- ``dqn``: SimpleQ, double Q-learning with a target network, epsilon-greedy;
- ``sarsa``: SimpleSARSA, on-policy TD on the action taken next;
- ``c51``: categorical distributional Q-learning over 51 atoms;
- ``qr-dqn``: quantile-regression distributional Q-learning;
- ``iqn``: implicit quantile networks.

    python examples/value_based_example.py --algorithm dqn [--prioritized]
"""

from __future__ import annotations

from flare.experiments.cartpole import VALUE_BASED, parse_args, report, train_value_based


def _flags(parser) -> None:
    parser.add_argument("--algorithm", choices=sorted(VALUE_BASED), default="dqn")
    parser.add_argument("--prioritized", action="store_true", help="prioritized replay")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], num_games=300, extra=_flags)
    manager = train_value_based(
        args.algorithm, args.num_games, args.seed, args.prioritized, log_dir=args.log_dir
    )
    print(report(manager))
