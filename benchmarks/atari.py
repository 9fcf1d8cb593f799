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

Each runs for ``--seconds``; the rate counts the frames (4 per agent step) after a
warm-up (``--warmup`` seconds: processes started, first games played). Targets: (a) at
least 1.5x (c); (b) at least 1.2x (c). Writes benchmarks/results/atari.json.

    python benchmarks/atari.py [--seconds 40] [--warmup 15] [--agents-per-process 8]
                               [--gpu-id 0 --out results/atari_gpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--agents-per-process", type=int, default=8)
    parser.add_argument("--torch-threads", type=int, default=2, help="the FLARE learner's")
    parser.add_argument("--gpu-id", type=int, default=-1, help="both models on this CUDA device")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = "cpu" if args.gpu_id < 0 else f"cuda:{args.gpu_id}"
    flare = (args.seconds, args.warmup, args.agents_per_process, args.torch_threads, args.gpu_id)
    measured = {
        "sb3_a2c": sb3_rate(args.seconds, args.warmup, device),
        "in_process": flare_rate("in_process", *flare),
        "bridge": flare_rate("bridge", *flare),
    }
    reference = measured["sb3_a2c"]["frames_per_s"]
    ratios = {mode: measured[mode]["frames_per_s"] / reference for mode in TARGETS}
    results = {
        "machine": f"{platform.machine()}, 2 cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "game": GAME,
        "device": device,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "measured": measured,
        "ratios_to_sb3": ratios,
        "targets": {mode: f">= {t}" for mode, t in TARGETS.items()},
        "met": {mode: ratios[mode] >= t for mode, t in TARGETS.items()},
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| pipeline | frames/s | x SB3 A2C | target |\n|---|---|---|---|")
    print(f"| SB3 A2C CnnPolicy, 8 envs | {reference:.0f} | 1.00 | |")
    for mode, target in TARGETS.items():
        rate = measured[mode]["frames_per_s"]
        print(f"| FLARE {mode.replace('_', '-')} | {rate:.0f} | {ratios[mode]:.2f} | >= {target} |")


if __name__ == "__main__":
    main()
