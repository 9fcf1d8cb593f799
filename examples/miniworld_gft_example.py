"""Language-directed navigation in 3D: a GFT agent with memory learns "go to the red ball"
in MiniWorld's rooms from first-person frames, over gRPC.

The rooms run in a simulator server (`flare serve miniworld --level N`, started for the
run unless --address names a running one); each agent opens a session with RemoteEnv and
sees ``{image: its RGB view, instruction: token ids of "go to the red ball"}``. Touching
the named object wins, touching another loses. The model is GFTModelAC(pixels=True),
learned by PPO on whole runs; --blind is the control that never reads the words. The
settings are ``flare.experiments.miniworld``'s; see docs/3d-simulators.md.

    python examples/miniworld_gft_example.py                  # level 1 to 90% success
    python examples/miniworld_gft_example.py --blind --minutes 30
"""

from __future__ import annotations

import argparse

from flare.bridge.launch import simulator_process
from flare.experiments.babyai import add_gft_flags
from flare.experiments.miniworld import LEVEL, serve_miniworld, summary, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=LEVEL, help="1 to 4")
    parser.add_argument("--address", help="a running `flare serve miniworld` (else one is started)")
    parser.add_argument("--env-processes", type=int, default=0, help="the server's render workers")
    add_gft_flags(parser, num_games=1_000)
    parser.add_argument("--minutes", type=float, help="stop after this many minutes")
    args = parser.parse_args()

    def run(address: str) -> None:
        manager = train(
            address,
            args.num_agents,
            args.num_games,
            args.success or None,
            args.seed,
            blind=args.blind,
            sample_interval=args.sample_interval,
            lr=args.lr,
            log_dir=args.log_dir,
            model_dir=args.model_dir,
            print_interval_s=30,
            stop_after_s=None if args.minutes is None else 60 * args.minutes,
        )
        print(f"MiniWorld level {args.level}: {summary(manager, args.success or 0.9)}")

    if args.address:
        run(args.address)
    else:
        with simulator_process(serve_miniworld(args.level, args.env_processes)) as address:
            run(address)


if __name__ == "__main__":
    main()
