"""The seed's Atari pipeline against Stable-Baselines3's A2C: frames per second of the whole
training loop (acting, stepping, learning), measured in one run on this machine.

(a) FLARE in-process: examples/img_ac_example.py's run (``flare.experiments.atari``:
    Breakout-v0 as 4 stacked 84x84 gray uint8 frames, 16 agents, the seed's CNN, SimpleAC
    with RMSprop, learning every 5 steps), ``--agents-per-process`` agents a process,
    ``--torch-threads`` for the learner;
(b) FLARE over the bridge: the same agents against one local ``flare serve gym --game
    Breakout-v0 --image --gray`` (each process's agents batched into one StepMany a step);
(c) SB3 A2C with its CnnPolicy on the same game (``make_atari_env``: no-op starts, frame
    skip 4 with max-pooling, FIRE on reset, 84x84 gray; ``VecFrameStack`` of 4), 8 envs,
    n_steps 5, one torch thread.

(a) and (b) run twice: learning in lock-step with acting (``--torch-threads`` for the
learner) and learning beside acting (``learn_beside_acting``: the learner in a thread of
its own with one torch thread while the CDP goes on predicting).

Each runs for ``--seconds``; the rate counts the frames (4 per agent step) after a
warm-up (``--warmup`` seconds: processes started, first games played). ``--repeats``
rounds of all five interleave, and each pipeline's median counts. Targets: (a) at least
1.5x (c); (b) at least 1.2x (c), each for its faster setting. Writes
benchmarks/results/atari.json.

    python benchmarks/atari.py [--seconds 40] [--warmup 15] [--repeats 3]
                               [--agents-per-process 8]
                               [--gpu-id 0 --out results/atari_gpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path

import torch

from flare.experiments.atari import FRAME_SKIP, GAME  # (the seed's game, 4 frames a step)

RESULTS = Path(__file__).resolve().parent / "results" / "atari.json"
TARGETS = {"in_process": 1.5, "bridge": 1.2}


class StepClock:
    """Counts steps as they happen and gives the rate after a warm-up."""

    def __init__(self, warmup_s: float) -> None:
        self.warmup_s = warmup_s
        self.start = time.perf_counter()
        self.marked: tuple[float, int] | None = None
        self.last: tuple[float, int] = (self.start, 0)
        self._lock = threading.Lock()

    def tick(self, steps: int) -> None:
        now = time.perf_counter()
        with self._lock:
            if self.marked is None and now - self.start >= self.warmup_s:
                self.marked = (now, steps)
            self.last = (now, steps)

    def frames_per_s(self) -> float:
        assert self.marked is not None, "the run was shorter than its warm-up"
        (t0, s0), (t1, s1) = self.marked, self.last
        return FRAME_SKIP * (s1 - s0) / (t1 - t0)


def flare_rate(
    mode: str,
    seconds: float,
    warmup: float,
    agents_per_process: int,
    torch_threads: int,
    gpu_id: int = -1,
    learn_beside_acting: bool = False,
) -> dict:
    """Frames/s of the seed's pipeline: every row the CT predicts is one agent's step."""
    from flare.experiments.atari import image_env_kwargs, train_atari
    from flare.framework.computation_task import ComputationTask

    clock = StepClock(warmup)
    predict = ComputationTask.predict
    steps = 0

    def counted(ct, inputs, states):  # (the CT runs in this process: count its rows)
        nonlocal steps
        steps += len(next(iter(inputs.values())))
        clock.tick(steps)
        return predict(ct, inputs, states)

    ComputationTask.predict = counted  # type: ignore[method-assign]
    try:
        options = dict(num_games=100_000, agents_per_process=agents_per_process,
                       torch_threads=torch_threads, stop_after_s=warmup + seconds,
                       gpu_id=gpu_id, learn_beside_acting=learn_beside_acting)  # fmt: skip
        if mode == "in_process":
            manager = train_atari(GAME, **options)
        else:
            from flare.bridge import RemoteEnv
            from flare.bridge.launch import flare_command, simulator_process

            command = [*flare_command(), "serve", "gym", "--game", GAME, "--image", "--gray",
                       "--address", "127.0.0.1:0"]  # fmt: skip
            with simulator_process(command) as address:
                env_kwargs = dict(address=address, **image_env_kwargs(GAME))
                manager = train_atari(GAME, env_class=RemoteEnv, env_kwargs=env_kwargs, **options)
    finally:
        ComputationTask.predict = predict  # type: ignore[method-assign]
    return {
        "frames_per_s": clock.frames_per_s(),
        "games": manager.games_played,
        "agents": len(manager.agents),
        "agents_per_process": agents_per_process,
        "torch_threads": torch_threads,
        "learn_beside_acting": learn_beside_acting,
    }


def sb3_rate(seconds: float, warmup: float, device: str = "cpu") -> dict:
    """Frames/s of SB3 A2C's learn(), from its own step counter."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(1)
    env = VecFrameStack(
        make_atari_env(GAME, n_envs=8, seed=0, env_kwargs=dict(frameskip=1)), n_stack=4
    )
    clock = StepClock(warmup)

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            clock.tick(self.num_timesteps)
            return time.perf_counter() - clock.start < warmup + seconds

    model = A2C("CnnPolicy", env, n_steps=5, seed=0, device=device)
    clock.start = time.perf_counter()
    model.learn(total_timesteps=10**9, callback=Clock())
    env.close()
    return {"frames_per_s": clock.frames_per_s(), "envs": 8, "n_steps": 5}


PIPELINES = {  # name: (where the env runs, learning beside acting)
    "in_process": ("in_process", False),
    "in_process_beside_acting": ("in_process", True),
    "bridge": ("bridge", False),
    "bridge_beside_acting": ("bridge", True),
}


def median_run(runs: list[dict]) -> dict:
    """The last run's details with the median rate of all runs, and every rate."""
    rates = [run["frames_per_s"] for run in runs]
    return {**runs[-1], "frames_per_s": statistics.median(rates),
            "frames_per_s_runs": [round(rate, 1) for rate in rates]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every pipeline")
    parser.add_argument("--agents-per-process", type=int, default=8)
    parser.add_argument("--torch-threads", type=int, default=2, help="the FLARE learner's")
    parser.add_argument("--gpu-id", type=int, default=-1, help="both models on this CUDA device")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = "cpu" if args.gpu_id < 0 else f"cuda:{args.gpu_id}"
    runs: dict[str, list[dict]] = {"sb3_a2c": [], **{name: [] for name in PIPELINES}}
    for round_ in range(args.repeats):  # (rounds interleave the pipelines: drift hits all)
        runs["sb3_a2c"].append(sb3_rate(args.seconds, args.warmup, device))
        for name, (mode, beside) in PIPELINES.items():
            threads = 1 if beside else args.torch_threads  # (the learner has its own core)
            run = flare_rate(mode, args.seconds, args.warmup, args.agents_per_process,
                             threads, args.gpu_id, learn_beside_acting=beside)  # fmt: skip
            runs[name].append(run)
            print(f"round {round_ + 1}: {name} {run['frames_per_s']:.0f} frames/s", flush=True)
    measured = {name: median_run(found) for name, found in runs.items()}
    reference = measured["sb3_a2c"]["frames_per_s"]
    ratios = {name: measured[name]["frames_per_s"] / reference for name in PIPELINES}
    best = {
        target: max((n for n in PIPELINES if PIPELINES[n][0] == target), key=ratios.__getitem__)
        for target in TARGETS
    }
    results = {
        "machine": f"{platform.machine()}, 2 cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "game": GAME,
        "device": device,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "repeats": args.repeats,
        "measured": measured,
        "ratios_to_sb3": ratios,
        "targets": {mode: f">= {t}" for mode, t in TARGETS.items()},
        "best": best,
        "met": {mode: ratios[best[mode]] >= t for mode, t in TARGETS.items()},
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| pipeline | frames/s (median) | x SB3 A2C | target |\n|---|---|---|---|")
    print(f"| SB3 A2C CnnPolicy, 8 envs | {reference:.0f} | 1.00 | |")
    for name, (mode, _) in PIPELINES.items():
        rate = measured[name]["frames_per_s"]
        print(f"| FLARE {name.replace('_', ' ')} | {rate:.0f} | {ratios[name]:.2f} | "
              f">= {TARGETS[mode]} |")  # fmt: skip


if __name__ == "__main__":
    main()
