"""Measure BabyAI GoTo levels for the language tutorial: env speed, and how a memoryless
gated-attention agent learns them over gRPC (`flare serve minigrid`).

A temporary measurement tool, not the tutorial. Two commands:

    python examples/babyai_baseline.py speed                      # steps/s per level
    python examples/babyai_baseline.py train --level BabyAI-GoToLocalS6N2-v0 --alg ppo

``train`` starts `flare serve minigrid --level LEVEL`, trains 16 agents
(``SimpleRLAgent`` over ``RemoteEnv`` sessions) with ``SimpleAC`` or ``PPO`` on
``ImageInstructionModelAC`` (gated attention, no memory), and stops once 90% of the last
100 games succeeded (or at ``--minutes``). The model sees minigrid's symbolic view one-hot
(object type, colour, state: 11 + 6 + 3 channels) instead of the base model's image / 255:
indices 0..10 divided by 255 would be nearly constant inputs.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.ppo import PPO
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.bridge.launch import flare_command, simulator_process
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.image_language_models import ImageInstructionModelAC

LEVELS = [
    "BabyAI-GoToRedBallGrey-v0",  # one named object: the words never change (sanity)
    "BabyAI-GoToLocalS5N2-v0",
    "BabyAI-GoToLocalS6N2-v0",
    "BabyAI-GoToLocalS6N3-v0",
    "BabyAI-GoToLocalS7N4-v0",
    "BabyAI-GoToLocalS8N2-v0",
    "BabyAI-GoToLocal-v0",
]
WINDOW = 100
# minigrid's symbolic cell: object type 0..10, colour 0..5, state 0..2
CHANNEL_VALUES = (11, 6, 3)


class OneHotImageModelAC(ImageInstructionModelAC):
    """``ImageInstructionModelAC`` over the one-hot symbolic view (20 channels)."""

    def __init__(
        self, image_shape, instruction_length, vocabulary_size, num_actions, blind=False, **kw
    ):
        _, height, width = image_shape
        self.blind = blind
        super().__init__(
            (sum(CHANNEL_VALUES), height, width),
            instruction_length,
            vocabulary_size,
            num_actions,
            **kw,
        )
        self.image_shape = tuple(int(d) for d in image_shape)  # what the env sends

    def features(self, inputs):
        image = inputs[self.image_name].long()
        planes = [
            F.one_hot(image[:, c].clamp(0, n - 1), n).permute(0, 3, 1, 2)
            for c, n in enumerate(CHANNEL_VALUES)
        ]
        seen = self.vision(torch.cat(planes, 1).float())
        words = inputs[self.instruction_name]
        if self.blind:  # the language-blind control: every instruction reads as padding
            words = torch.zeros_like(words)
        gate = self.gate(self.embedding(words).flatten(1))
        return self.trunk((seen * gate[:, :, None, None]).flatten(1))


def serve_command(level: str) -> list[str]:
    return [
        *flare_command(), "serve", "minigrid", "--level", level, "--address", "127.0.0.1:0",
    ]  # fmt: skip


def success_rate(manager: Manager, window: int = WINDOW) -> float:
    last = manager.stats[-window:]
    return float(np.mean([r.success for r in last])) if last else 0.0


def _stop_when(
    manager: Manager, target: float | None, deadline: float, done: threading.Event
) -> None:
    """Ctrl-C the run (the Manager stops cleanly on SIGINT) once ``target`` of the last
    ``WINDOW`` games succeeded, or at ``deadline``."""
    while not done.wait(1.0):
        full = len(manager.stats) >= WINDOW
        reached = target is not None and full and success_rate(manager) >= target
        if reached or time.monotonic() > deadline:
            os.kill(os.getpid(), signal.SIGINT)
            return


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    with simulator_process(serve_command(args.level)) as address:
        probe = RemoteEnv(address)
        spec = probe.spec()
        probe.close()
        image, instruction = spec.observations
        model = OneHotImageModelAC(
            image.shape,
            instruction.shape[0],
            instruction.kind.vocabulary_size,
            spec.action_dims()["action"],
            blind=args.blind,
        )
        if args.alg == "ac":
            alg = SimpleAC(
                model,
                discount_factor=args.discount,
                entropy_weight=args.entropy,
                optim=(optim.Adam, dict(lr=args.lr)),
            )
            helper = dict(sample_interval=args.sample_interval, batch_wait_s=0.01)
        else:
            alg = PPO(
                model,
                discount_factor=args.discount,
                gae_lambda=0.95,
                num_epochs=args.epochs,
                minibatch_size=args.minibatch,
                entropy_weight=args.entropy,
                optim=(optim.Adam, dict(lr=args.lr)),
            )
            helper = dict(sample_interval=args.sample_interval, batch_wait_s=1.0)
        manager = Manager(
            {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, **helper)},
            dict(print_interval_s=30, window=WINDOW, log_dir=args.log_dir),
        )
        for index in range(args.num_agents):
            agent = SimpleRLAgent(10**7)
            agent.set_env(RemoteEnv, address=address, seed=args.seed * 1000 + index)
            manager.add_agent(agent)
        done = threading.Event()
        target = None if args.run_on else args.target
        watcher = threading.Thread(
            target=_stop_when,
            args=(manager, target, time.monotonic() + 60 * args.minutes, done),
            daemon=True,
        )
        watcher.start()
        start = time.monotonic()
        try:
            manager.start()
        finally:
            done.set()
        wall = time.monotonic() - start
    stats = manager.stats
    successes = np.array([r.success for r in stats], dtype=float)
    steps = np.cumsum([r.length for r in stats])
    rolling = np.convolve(successes, np.ones(WINDOW) / WINDOW, "valid") if len(stats) else []
    best = float(np.max(rolling)) if len(rolling) else float("nan")
    reached = next((i + WINDOW - 1 for i, s in enumerate(rolling) if s >= args.target), None)
    settings = (
        f"{args.alg} lr={args.lr} discount={args.discount} entropy={args.entropy} "
        f"sample_interval={args.sample_interval}"
        + (f" epochs={args.epochs} minibatch={args.minibatch}" if args.alg == "ppo" else "")
    )
    blind = " BLIND (instruction hidden)" if args.blind else ""
    print(f"RESULT level={args.level} agents={args.num_agents} {settings}{blind}")
    print(
        f"RESULT {len(stats)} games, {int(steps[-1]) if len(stats) else 0} steps, "
        f"{wall:.0f} s; best success over {WINDOW} games: {best:.0%}; mean return of the "
        f"last {WINDOW}: {np.mean([r.return_ for r in stats[-WINDOW:]]):.2f}; "
        + (
            f"reached {args.target:.0%} after {reached + 1} games, {int(steps[reached])} "
            f"steps, {stats[reached].wall_s:.0f} s"
            if reached is not None
            else f"never reached {args.target:.0%}"
        ),
        flush=True,
    )
    for k in range(WINDOW, len(stats) + 1, max(WINDOW, len(stats) // 20)):
        print(
            f"  games {k:6d}  steps {int(steps[k - 1]):8d}  {stats[k - 1].wall_s:6.0f} s  "
            f"success {np.mean(successes[k - WINDOW : k]):.0%}  "
            f"return {np.mean([r.return_ for r in stats[k - WINDOW : k]]):.2f}"
        )


def _rate(env, seconds: float, seed: int = 0) -> tuple[float, float]:
    """Random-walk steps per second and the random walk's success rate."""
    rng = np.random.default_rng(seed)
    num_actions = env.action_dims()["action"]
    env.reset()
    steps = games = wins = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, game_over = env.step({"action": np.array([rng.integers(num_actions)])})
        steps += 1
        if game_over or env.time_out():
            games += 1
            wins += game_over == 1
            env.reset()
    return steps / (time.perf_counter() - start), wins / max(games, 1)


def speed(args: argparse.Namespace) -> None:
    from flare.env_zoo.minigrid_env import MiniGridEnv

    print(
        "| level | max steps | in-process steps/s | gRPC steps/s (1 session) "
        "| random walk success |"
    )
    print("|---|---|---|---|---|")
    for level in args.levels or LEVELS:
        local = MiniGridEnv(level, seed=0)
        local_rate, random_success = _rate(local, args.seconds)
        with simulator_process(serve_command(level)) as address:
            remote = RemoteEnv(address, seed=0)
            remote_rate, _ = _rate(remote, args.seconds)
            remote.close()
        print(
            f"| {level} | {local.max_steps} | {local_rate:,.0f} | {remote_rate:,.0f} | "
            f"{random_success:.0%} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speed", help="env steps/s in-process and over gRPC")
    s.add_argument("--levels", nargs="*")
    s.add_argument("--seconds", type=float, default=3.0)
    s.set_defaults(func=speed)
    t = sub.add_parser("train", help="train 16 memoryless agents on one level")
    t.add_argument("--level", default="BabyAI-GoToLocalS6N2-v0")
    t.add_argument("--alg", choices=["ac", "ppo"], default="ppo")
    t.add_argument("--num-agents", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--discount", type=float, default=0.99)
    t.add_argument("--entropy", type=float, default=0.01)
    t.add_argument("--sample-interval", type=int, default=16)
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--minibatch", type=int, default=64)
    t.add_argument("--target", type=float, default=0.9, help="success over the last 100 games")
    t.add_argument("--minutes", type=float, default=25.0, help="stop after this long")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--blind", action="store_true", help="hide the instruction (control)")
    t.add_argument(
        "--run-on", action="store_true", help="keep training to --minutes after the target"
    )
    t.add_argument("--log-dir")
    t.set_defaults(func=train)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
