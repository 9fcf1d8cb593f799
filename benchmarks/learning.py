"""Wall time to solve CartPole-v0 (mean return >= 195 over the last 100 games): FLARE's
fastest configuration against Stable-Baselines3's PPO and A2C, median of several seeds.

    python benchmarks/learning.py [--seeds 5] [--out benchmarks/results/learning.json]

SB3 runs with the rl-baselines3-zoo settings tuned for CartPole (its CartPole-v1 entries,
the closest to v0 the zoo has): PPO with 8 envs, n_steps 32, batch 256, 20 epochs,
gamma 0.98, GAE lambda 0.8, linearly decayed learning rate 1e-3 and clip range 0.2, over a
1e5-step budget; A2C with 8 envs and ent_coef 0 (otherwise SB3's defaults). Every run is
timed from the start of training (networks built, envs created) to the game at which the
target is reached, all on this machine, one after another, in one process run. Before
the first run one Adam optimizer is built, so no method pays PyTorch's one-off lazy
import of ``torch._dynamo`` (~1.4 s here) in its timing.
Needs ``pip install -e .[bench]`` (stable-baselines3).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

TARGET = 195.0
WINDOW = 100


@dataclass
class Run:
    method: str
    seed: int
    solved: bool
    wall_s: float
    games: int
    env_steps: int


def flare_ppo(seed: int) -> Run:
    from flare.experiments.cartpole import train_ppo  # what examples/ppo_example.py runs

    start = time.perf_counter()
    manager = train_ppo(num_games=400, seed=seed, print_interval_s=0)
    wall = time.perf_counter() - start
    return Run(
        "FLARE PPO (8 agents, 4 per process)",
        seed,
        manager.reached_target,
        wall,
        len(manager.stats),
        sum(r.length for r in manager.stats),
    )


def _sb3_run(name: str, make_model: Callable, seed: int, budget: int) -> Run:
    from stable_baselines3.common.callbacks import BaseCallback

    returns: deque[float] = deque(maxlen=WINDOW)
    counts = {"games": 0}

    class StopAtTarget(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    returns.append(info["episode"]["r"])
                    counts["games"] += 1
            return not (len(returns) == WINDOW and sum(returns) / WINDOW >= TARGET)

    start = time.perf_counter()
    model = make_model(seed)
    callback = StopAtTarget()
    model.learn(total_timesteps=budget, callback=callback)
    wall = time.perf_counter() - start
    solved = len(returns) == WINDOW and sum(returns) / WINDOW >= TARGET
    return Run(name, seed, solved, wall, counts["games"], int(model.num_timesteps))


def sb3_ppo(seed: int) -> Run:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    def linear(start: float) -> Callable[[float], float]:
        return lambda progress_remaining: progress_remaining * start

    def make(seed: int) -> PPO:
        env = make_vec_env("CartPole-v0", n_envs=8, seed=seed)
        return PPO(
            "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
            n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
            seed=seed, device="cpu",
        )  # fmt: skip

    return _sb3_run("SB3 PPO (zoo-tuned)", make, seed, budget=100_000)


def sb3_a2c(seed: int) -> Run:
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    def make(seed: int) -> A2C:
        env = make_vec_env("CartPole-v0", n_envs=8, seed=seed)
        return A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu")

    return _sb3_run("SB3 A2C (zoo-tuned)", make, seed, budget=500_000)


METHODS = {"flare_ppo": flare_ppo, "sb3_ppo": sb3_ppo, "sb3_a2c": sb3_a2c}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/learning.json"))
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    # the first optimizer built in a process imports torch._dynamo: not part of training
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    runs: list[Run] = []
    # seeds interleaved across methods, so machine drift hits every method alike
    for seed in range(args.seeds):
        for key in args.methods:
            run = METHODS[key](seed)
            runs.append(run)
            print(
                f"{run.method:24s} seed {seed}: {'solved' if run.solved else 'NOT solved'} "
                f"in {run.wall_s:6.1f} s, {run.games} games, {run.env_steps} steps",
                flush=True,
            )
    summary = {}
    for method in dict.fromkeys(r.method for r in runs):
        mine = [r for r in runs if r.method == method]
        # an unsolved run counts as infinitely slow for the median
        walls = [r.wall_s if r.solved else float("inf") for r in mine]
        summary[method] = {
            "median_wall_s": statistics.median(walls),
            "solved": sum(r.solved for r in mine),
            "runs": len(mine),
            "median_env_steps": statistics.median(r.env_steps for r in mine),
        }
    result = {
        "target": f"CartPole-v0 mean return >= {TARGET} over the last {WINDOW} games",
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"torch threads, python {platform.python_version()}, torch {torch.__version__}",
        "summary": summary,
        "runs": [asdict(r) for r in runs],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for method, s in summary.items():
        print(f"{method:24s} median {s['median_wall_s']:.1f} s ({s['solved']}/{s['runs']} solved)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
