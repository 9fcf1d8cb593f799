"""Learning evidence on a CPU: the seed's Breakout run for a wall-clock budget, then
Stable-Baselines3's A2C given the same budget, one after the other in one run.

(a) FLARE: examples/configs/breakout_ac.toml's run (``flare.experiments.atari``: the
    seed's CNN and SimpleAC, 16 agents, 8 a process, learning beside acting;
    ``--lock-step`` learns in turns with acting, on 2 learner threads);
(b) SB3 A2C with its CnnPolicy and the RL Zoo's Atari settings (16 envs, n_steps 5,
    entropy 0.01, value weight 0.25, RMSprop as TensorFlow's with eps 1e-5; one torch
    thread), on ``make_atari_env`` + ``VecFrameStack(4)``.

Both play whole games (5 lives), rewards sign-clipped for learning; a game's return is
the raw score. Writes ``--out-dir``/results.json (games, frames, wall time, mean score of
the last 100 games over time) and the curve PNG (``--png``).

    python benchmarks/atari_learning.py [--seconds 3600] [--png docs/images/...png]
                                        [--lock-step]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from flare.common.curves import moving_average
from flare.experiments.atari import FRAME_SKIP, GAME

HERE = Path(__file__).resolve().parent
WINDOW = 100
CURVE_POINTS = 2000  # per run in results.json and the plot (a game's end each)


def curve(wall_s: list[float], frames: list[int], returns: list[float]) -> dict:
    """The mean score of the last ``WINDOW`` games at game ends (their wall time and the
    frames played by then), at most ``CURVE_POINTS`` of them, evenly spread, the last
    game's always."""
    means = moving_average(np.asarray(returns, dtype=np.float64), WINDOW) if returns else []
    keep = thinned(len(returns))
    return {
        "wall_s": [round(wall_s[i], 1) for i in keep],
        "frames": [int(frames[i]) for i in keep],
        "mean_return": [round(float(means[i]), 3) for i in keep],
    }


def thinned(count: int, points: int | None = None) -> list[int]:
    """At most ``points`` (``CURVE_POINTS``) indices of ``range(count)``, evenly spread,
    the last one included."""
    points = CURVE_POINTS if points is None else points
    if count <= points:
        return list(range(count))
    return sorted({round(i * (count - 1) / (points - 1)) for i in range(points)})


def summary(
    name: str, seconds: float, frames: int, games: tuple[list[float], list[int], list[float]]
) -> dict:
    """``games``: each game's end (wall seconds), the frames played by then, its score."""
    points = curve(*games)
    returns = games[2]
    means = moving_average(np.asarray(returns, dtype=np.float64), WINDOW) if returns else []
    full = means[WINDOW - 1 :].tolist() if len(returns) >= WINDOW else []
    return {
        "pipeline": name,
        "budget_s": seconds,
        "games": len(returns),
        "frames": frames,
        "frames_per_s": frames / seconds,
        "final_mean_return": round(float(means[-1]), 3) if returns else None,
        "best_mean_return": round(max(full), 3) if full else None,
        "best_return": max(returns) if returns else None,
        "curve": points,
    }


def run_flare(seconds: float, out_dir: Path, lock_step: bool = False) -> dict:
    from flare.experiments.atari import train_atari

    # (examples/configs/breakout_ac.toml's settings; lock step: 2 threads for the learner)
    manager = train_atari(
        GAME,
        num_games=10**6,
        agents_per_process=8,
        learn_beside_acting=not lock_step,
        torch_threads=2 if lock_step else 1,
        stop_after_s=seconds,
        log_dir=str(out_dir / "flare"),
        print_interval_s=120,
    )
    games = sorted(manager.stats, key=lambda record: record.game)
    played = np.cumsum([FRAME_SKIP * record.length for record in games]).tolist()
    return summary(
        "FLARE SimpleAC (the seed's Breakout run)",
        seconds,
        played[-1] if played else 0,
        ([record.wall_s for record in games], played, [record.return_ for record in games]),
    )


def run_sb3(seconds: float) -> dict:
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(1)
    env = VecFrameStack(
        make_atari_env(GAME, n_envs=16, seed=0, env_kwargs=dict(frameskip=1)), n_stack=4
    )
    wall_s: list[float] = []
    played: list[int] = []
    returns: list[float] = []
    start = time.perf_counter()

    class Budget(BaseCallback):
        def _on_step(self) -> bool:
            now = time.perf_counter() - start
            for info in self.locals["infos"]:
                if "episode" in info:  # (Monitor's: a whole game, before the life-loss wrapper)
                    wall_s.append(now)
                    played.append(FRAME_SKIP * self.num_timesteps)
                    returns.append(float(info["episode"]["r"]))
            return now < seconds

    model = A2C(
        "CnnPolicy",
        env,
        n_steps=5,
        ent_coef=0.01,
        vf_coef=0.25,
        policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5)),
        seed=0,
        device="cpu",
    )
    budget = Budget()
    model.learn(total_timesteps=10**10, callback=budget)
    env.close()
    return summary(
        "SB3 A2C CnnPolicy (RL Zoo Atari settings, 16 envs)",
        seconds,
        FRAME_SKIP * model.num_timesteps,
        (wall_s, played, returns),
    )


def plot(results: list[dict], png: Path) -> None:
    """The mean score against wall time (the budget both had) and against frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_time, by_frames) = plt.subplots(2, 1, figsize=(8, 8))
    for result, colour in zip(results, ("tab:blue", "tab:orange"), strict=False):
        points = result["curve"]
        label = (
            f"{result['pipeline']}: {result['games']} games, {result['frames'] / 1e6:.1f}M frames"
        )
        minutes = np.asarray(points["wall_s"]) / 60
        by_time.plot(minutes, points["mean_return"], color=colour, label=label)
        millions = np.asarray(points["frames"]) / 1e6
        by_frames.plot(millions, points["mean_return"], color=colour)
    by_time.set_xlabel("wall-clock minutes (one run after the other, the same machine)")
    by_frames.set_xlabel("millions of frames played")
    for ax in (by_time, by_frames):
        ax.set_ylabel(f"score, mean of the last {WINDOW} games")
        ax.grid(alpha=0.3)
    by_time.set_title("Breakout from pixels on 2 CPU cores, the same wall time each")
    by_time.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0, help="each pipeline's budget")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results" / "atari_learning")
    parser.add_argument("--png", type=Path, default=None, help="(default: in --out-dir)")
    parser.add_argument(
        "--lock-step", action="store_true", help="FLARE learns in turns with acting"
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = [run_flare(args.seconds, args.out_dir, args.lock_step), run_sb3(args.seconds)]
    document = {
        "machine": f"{platform.machine()}, 2 cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "game": GAME,
        "runs": results,
    }
    (args.out_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    plot(results, args.png or args.out_dir / "breakout_curve.png")
    for result in results:
        print(
            f"{result['pipeline']}: {result['games']} games, {result['frames']} frames "
            f"({result['frames_per_s']:.0f}/s), mean of the last {WINDOW}: "
            f"{result['final_mean_return']}, best: {result['best_mean_return']}"
        )


if __name__ == "__main__":
    main()
