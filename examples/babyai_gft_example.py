"""Language-directed navigation: a GFT agent with memory learns a BabyAI GoTo level over gRPC.

The level runs in a simulator server (`flare serve minigrid --level LEVEL`, started for
the run unless --address names a running one); each agent opens a session with
RemoteEnv and sees ``{image: minigrid's 7x7 egocentric symbolic view, instruction:
token ids of "go to the red ball"}``. The model is GFTModelAC: the instruction's vector
generates transformations of every position's visual feature, a GRU carries memory
across steps, and PPO learns on whole runs. The server fails a game whose agent faces
an object the instruction does not name (--wrong-object-ends; --babyai-rule turns it
off), so only following the words wins. The settings are ``flare.experiments.babyai``'s;
see docs/tutorial-language-navigation.md.

    python examples/babyai_gft_example.py                      # GoToLocalS5N2 to 90%
    python examples/babyai_gft_example.py --level BabyAI-GoToLocalS6N2-v0 --num-games 4000
"""

from __future__ import annotations

import argparse

from flare.bridge.launch import simulator_process
from flare.experiments.babyai import LEVEL, add_gft_flags, serve_minigrid, summary, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", default=LEVEL, help="a BabyAI GoTo level id")
    parser.add_argument("--address", help="a running `flare serve minigrid` (else one is started)")
    parser.add_argument(
        "--babyai-rule",
        action="store_true",
        help="let the agent face wrong objects (BabyAI's rule) instead of failing the game",
    )
    add_gft_flags(parser, num_games=2_000)
    parser.add_argument("--minibatch", type=int, default=64, help="PPO's minibatch (transitions)")
    args = parser.parse_args()

    def run(address: str) -> None:
        manager = train(
            address,
            args.num_agents,
            args.num_games,
            args.success or None,
            args.seed,
            sample_interval=args.sample_interval,
            log_dir=args.log_dir,
            model_dir=args.model_dir,
            lr=args.lr,
            minibatch_size=args.minibatch,
            blind=args.blind,
        )
        print(f"{args.level}: {summary(manager, args.success or 0.9)}")

    if args.address:
        run(args.address)
    else:
        with simulator_process(serve_minigrid(args.level, not args.babyai_rule)) as address:
            run(address)


if __name__ == "__main__":
    main()
