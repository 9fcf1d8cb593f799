"""PPO (clipped objective, GAE, minibatch epochs) on CartPole with OnlineHelper.

The settings are ``flare.experiments.cartpole.train_ppo``'s.

    python examples/ppo_example.py
"""

from __future__ import annotations

from flare.experiments.cartpole import parse_args, report, train_ppo

if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], num_games=200)
    manager = train_ppo(args.num_games, args.seed, log_dir=args.log_dir)
    print(report(manager))
