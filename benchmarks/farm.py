"""Farms and batched stepping, measured in one run on this machine.

(a) **Bridge vs in-process**: FLARE's PPO CartPole run (examples/configs/cartpole_ppo.toml:
    8 agents, 4 per process, stop at a mean return of 195) with in-process Gym, and the
    same run against one local ``flare serve gym`` (the agents of a process batched into
    one StepManyStream message per step). Seeds 0-4, each way going first in turn; all
    must play exactly the same games. Target: median wall time over the bridge within
    1.3x of in-process. Beside it, the same run against a server of plain gRPC handlers
    over FLARE's sessions (``bare_simulator.py sessions``): what the bridge would take with
    none of the server's own layers.
(b) **Farm throughput**: a ``flare.gymnasium`` VectorEnv of 16 CartPole sessions spread
    over 1, 2 and 4 local ``flare serve`` servers (``LocalFarm``), random actions: env
    steps per second.

Writes benchmarks/results/farm.json and prints a Markdown table.

    python benchmarks/farm.py [--seeds 0,1,2,3,4] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "farm.json"
CONFIG = ROOT / "examples" / "configs" / "cartpole_ppo.toml"
TARGET = 1.3


GYM = 'adapter = "gym"\noptions = { game = "CartPole-v0" }'
MODES = ("in_process", "bridge", "plain_server")


def _config_text(mode: str, seed: int) -> str:
    text = CONFIG.read_text().replace("seed = 0", f"seed = {seed}")
    if mode == "bridge":
        text = text.replace(GYM, f"{GYM}\nserve = true")
    elif mode == "plain_server":
        plain = [sys.executable, str(Path(__file__).parent / "bare_simulator.py"), "sessions"]
        text = text.replace(GYM, f"command = {json.dumps(plain)}")
    return text


def ppo_run(mode: str, seed: int) -> dict[str, object]:
    """One training run to the target: its games, env steps and wall time."""
    from flare.framework.reports import in_play_order
    from flare.learner.config import parse_config
    from flare.learner.quiet_run import quiet_run

    config = parse_config(_config_text(mode, seed))
    with (
        tempfile.TemporaryDirectory() as tmp,
        quiet_run(config, Path(tmp) / "run", ROOT) as learner,
    ):
        manager = learner.manager
        learner.run(config.stop.mean_return)
    games = [(r.agent, r.agent_game, r.length) for r in in_play_order(manager.stats)]
    return {
        "games": manager.games_played,
        "env_steps": manager.env_steps,
        "wall_s": manager.wall_s,
        "fingerprint": hash(tuple(games)),
    }


def farm_throughput(servers: int, seconds: float, num_envs: int = 16) -> float:
    """Env steps/s of a VectorEnv of ``num_envs`` sessions over ``servers`` servers."""
    from flare.bridge.launch import flare_serve_gym
    from flare.farm.local import LocalFarm
    from flare.gymnasium import RemoteVectorEnv

    with LocalFarm(flare_serve_gym("CartPole-v1"), servers) as farm:
        envs = RemoteVectorEnv(num_envs, list(farm.addresses), seed=0)
        try:
            envs.reset(seed=0)
            rng = np.random.default_rng(0)
            for _ in range(50):  # (warm-up)
                envs.step(rng.integers(0, 2, num_envs))
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                envs.step(rng.integers(0, 2, num_envs))
                steps += num_envs
            return steps / (time.perf_counter() - start)
        finally:
            envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict[str, object]]] = {mode: [] for mode in MODES}
    for i, seed in enumerate(seeds):
        order = MODES[i % len(MODES) :] + MODES[: i % len(MODES)]  # (each goes first in turn)
        measured = {mode: ppo_run(mode, seed) for mode in order}
        reference = measured["in_process"]["fingerprint"]
        for mode in order:
            same = measured[mode]["fingerprint"] == reference
            runs[mode].append({"seed": seed, **measured[mode], "same_games": same})
        print(
            f"seed {seed}: "
            + ", ".join(f"{mode} {measured[mode]['wall_s']:.1f} s" for mode in MODES)
            + f", {measured['bridge']['games']} games ("
            + ("the same" if all(r[-1]["same_games"] for r in runs.values()) else "NOT the same")
            + ")",
            flush=True,
        )
    median = {mode: statistics.median(r["wall_s"] for r in rs) for mode, rs in runs.items()}  # type: ignore[misc]
    ratio = median["bridge"] / median["in_process"]
    plain_ratio = median["plain_server"] / median["in_process"]
    throughput = {n: farm_throughput(n, args.seconds) for n in (1, 2, 4)}
    results = {
        "machine": f"{platform.machine()}, 2 cores, Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}",
        "a_ppo_cartpole_bridge_vs_in_process": {
            "what": "examples/configs/cartpole_ppo.toml to a mean return of 195: in-process "
            "Gym vs one local `flare serve gym` (agents of a process batched per step)",
            "runs": runs,
            "median_wall_s": median,
            "ratio": ratio,
            "target": f"<= {TARGET}",
            "met": ratio <= TARGET,
            "same_games_every_seed": all(r["same_games"] for rs in runs.values() for r in rs),
            "plain_server": "the same run against FLARE's sessions and StepMany behind plain "
            "gRPC handlers, none of the server's layers (benchmarks/bare_simulator.py sessions)",
            "plain_server_ratio": plain_ratio,
        },
        "b_farm_vector_env_16_sessions_env_steps_per_s": {
            "what": "flare.gymnasium.RemoteVectorEnv of 16 CartPole-v1 sessions over N local "
            "flare serve servers (StepManyStream per server, auto-reset), random actions",
            "servers": {str(n): rate for n, rate in throughput.items()},
        },
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("\n| measure | value |\n|---|---|")
    print(f"| PPO CartPole median wall, in-process | {median['in_process']:.1f} s |")
    print(f"| PPO CartPole median wall, over the bridge | {median['bridge']:.1f} s |")
    print(f"| ratio (target <= {TARGET}) | {ratio:.2f} |")
    print(f"| PPO CartPole median wall, plain gRPC server | {median['plain_server']:.1f} s |")
    print(f"| ratio, plain gRPC server | {plain_ratio:.2f} |")
    for n, rate in throughput.items():
        print(f"| farm of {n}: env steps/s (16 sessions) | {rate:.0f} |")


if __name__ == "__main__":
    main()
