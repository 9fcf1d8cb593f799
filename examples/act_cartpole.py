"""A simulator that drives its own loop, playing CartPole as agents of a running learner.

Start the learner first (it waits for the streams), then this:

    flare train examples/configs/cartpole_act.toml --learner-address 127.0.0.1:50061
    python examples/act_cartpole.py --learner 127.0.0.1:50061

Each stream is one CartPole loop (in threads of a few processes), sending its
observations through ``flare.learner.act_client`` and applying the actions it gets
back, until the learner says the run needs no more games.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import threading

from flare.env_zoo.gym_env import GymEnv
from flare.learner.act_client import drive


def play_streams(address: str, game: str, seeds: list[int]) -> int:
    """One thread per stream; the games they played."""
    played: list[int] = []

    def one(seed: int) -> None:
        played.append(drive(GymEnv(game, seed=seed), address, name=f"{game}-{seed}"))

    threads = [threading.Thread(target=one, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(played)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", required=True, help="HOST:PORT of the learner")
    parser.add_argument("--game", default="CartPole-v0")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seeds = [args.seed * 1000 + i for i in range(args.streams)]
    groups = [seeds[i :: args.processes] for i in range(args.processes)]
    with mp.get_context("spawn").Pool(args.processes) as pool:
        games = pool.starmap(play_streams, [(args.learner, args.game, g) for g in groups if g])
    print(f"act_cartpole: {sum(games)} games played; the learner ended the streams")


if __name__ == "__main__":
    main()
