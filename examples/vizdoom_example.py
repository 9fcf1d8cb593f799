"""ViZDoom from pixels over gRPC: actor-critic agents learn a Doom scenario from its frames.

The scenario runs in a simulator server (`flare serve vizdoom --scenario NAME`, started
for the run unless --address names a running one, which must serve what the scenario's
settings ask); each agent opens a session with RemoteEnv and sees the first-person
`screen` only (uint8, channels first). The model is SimpleModelAC over a small CNN,
learned by A2C (SimpleAC). The settings are ``flare.experiments.vizdoom``'s; see
docs/3d-simulators.md.

    python examples/vizdoom_example.py                              # basic; stops at a mean of 75
    python examples/vizdoom_example.py --scenario health_gathering --minutes 30
"""

from __future__ import annotations

import argparse

from flare.bridge.launch import simulator_process
from flare.experiments.vizdoom import SCENARIOS, serve_vizdoom, summary, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="basic", choices=sorted(SCENARIOS))
    parser.add_argument("--address", help="a running `flare serve vizdoom` (else one is started)")
    parser.add_argument("--num-agents", type=int, default=16)
    parser.add_argument("--num-games", type=int, help="games per agent (default: the scenario's)")
    parser.add_argument(
        "--target",
        type=float,
        help="stop at this mean return of 100 games (default: its own)",
    )
    parser.add_argument("--minutes", type=float, help="stop after this many minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-processes", type=int, default=0, help="the server's env workers")
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    parser.add_argument("--model-dir", help="save the model to MODEL_DIR/RL.pt")
    args = parser.parse_args()
    run_settings = SCENARIOS[args.scenario]
    target = run_settings.target if args.target is None else args.target

    def run(address: str) -> None:
        manager = train(
            address,
            args.scenario,
            num_agents=args.num_agents,
            num_games=args.num_games,
            seed=args.seed,
            stop_at_mean_return=target,
            stop_after_s=None if args.minutes is None else 60 * args.minutes,
            log_dir=args.log_dir,
            model_dir=args.model_dir,
            print_interval_s=30,
        )
        print(f"{args.scenario}: {summary(manager)}")

    if args.address:
        run(args.address)
    else:
        options = dict(run_settings.options)
        if args.env_processes:
            options["env_processes"] = args.env_processes
        with simulator_process(serve_vizdoom(args.scenario, **options)) as address:
            run(address)


if __name__ == "__main__":
    main()
