"""GaussianAC (on-policy actor-critic, Gaussian policy, GAE) on Pendulum with OnlineHelper.

The settings are ``flare.experiments.pendulum.train_gaussian_ac``'s.

    python examples/gaussian_ac_example.py
"""

from __future__ import annotations

from flare.experiments.pendulum import make_parser, report, train_gaussian_ac

if __name__ == "__main__":
    args = make_parser(__doc__.splitlines()[0], num_games=100).parse_args()
    manager = train_gaussian_ac(args.num_games, args.seed, not args.no_stop, log_dir=args.log_dir)
    print(report(manager))
