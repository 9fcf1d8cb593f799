"""DDPG (deterministic actor, Q critic, soft target updates) on Pendulum with replay.

The settings are ``flare.experiments.pendulum.train_ddpg``'s.

    python examples/ddpg_example.py [--noise gaussian|ou]
"""

from __future__ import annotations

from flare.experiments.pendulum import make_parser, report, train_ddpg

if __name__ == "__main__":
    parser = make_parser(__doc__.splitlines()[0], num_games=100)
    parser.add_argument("--noise", choices=("gaussian", "ou"), default="gaussian")
    args = parser.parse_args()
    manager = train_ddpg(
        args.num_games, args.seed, not args.no_stop, args.noise, log_dir=args.log_dir
    )
    print(report(manager))
