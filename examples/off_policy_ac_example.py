"""Off-policy actor-critic (truncated importance weights, replay) on CartPole.

The behaviour policy's log-probability of each action is stored with the step, so a
replayed sample is reweighted by min(c, pi/mu) however old it is. The settings are
``flare.experiments.cartpole.train_off_policy_ac``'s.

    python examples/off_policy_ac_example.py [--prioritized]
"""

from __future__ import annotations

from flare.experiments.cartpole import parse_args, report, train_off_policy_ac

if __name__ == "__main__":
    args = parse_args(
        __doc__.splitlines()[0],
        num_games=300,
        extra=lambda p: p.add_argument("--prioritized", action="store_true"),
    )
    manager = train_off_policy_ac(args.num_games, args.seed, args.prioritized, log_dir=args.log_dir)
    print(report(manager))
