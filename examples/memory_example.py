"""An agent with memory solves a task a memoryless agent cannot.

CueMemoryEnv shows a cue at the first step only and asks for it after ``delay`` blank
steps. The same actor-critic learns it with a GRU (SimpleRNNModelAC, SimpleRNNRLAgent)
and without one (SimpleModelAC, SimpleRLAgent): only the first gets past a coin flip.
``--algorithm ppo`` uses PPO on the same models (minibatches of whole runs);
``--algorithm q`` Q-learning on replayed runs (SimpleRNNModelQ, SimpleQ, ExpReplayHelper
with sequence_length). The settings are ``flare.experiments.memory``'s.

    python examples/memory_example.py                 # both agents, actor-critic
    python examples/memory_example.py --algorithm q   # both agents, DQN / DRQN
"""

from __future__ import annotations

import argparse

from flare.experiments.memory import ALGORITHMS, WINDOW, success_rates, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="ac")
    parser.add_argument("--delay", type=int, default=4, help="blank steps after the cue")
    parser.add_argument("--num-agents", type=int, default=8)
    parser.add_argument("--num-games", type=int, default=300, help="games per agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("memory", "memoryless"), help="train one agent only")
    args = parser.parse_args()
    kinds = [args.only == "memory"] if args.only else [True, False]
    for memory in kinds:
        manager = train(
            memory, args.algorithm, args.delay, args.num_agents, args.num_games, args.seed
        )
        last, best = success_rates(manager)
        name = "with memory (GRU)" if memory else "without memory"
        wall = manager.stats[-1].wall_s if manager.stats else 0.0
        print(
            f"{args.algorithm} {name}: {len(manager.stats)} games, success over the last "
            f"{WINDOW}: {last:.0%} (best {best:.0%}), {wall:.0f} s"
        )


if __name__ == "__main__":
    main()
