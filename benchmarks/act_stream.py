"""An Act step against a simulator-service step, for the same env, in one run.

The same PPO CartPole training run (examples/configs/cartpole_ppo.toml's settings,
8 agents, a fixed budget of games, seed 0) is played two ways, in alternation:

- **simulator service**: the run's 8 agents (4 per process) step CartPole through
  ``RemoteEnv`` on a local ``flare serve gym`` (a child process);
- **Act**: the run has no agents of its own and takes 8 Act streams; 2 simulator
  processes each drive 4 CartPole loops (``GymEnv``) through ``ActClient``.

Both have the env outside the learner and the same batches in the CDP (every update
waits for all 8 agents). The figure is env steps per second of the whole run (stepping,
predicting, storing, learning); each round gives one ratio Act / service, and the median
over the rounds is reported. Target: >= 1.0 (an Act step costs no more). Writes
benchmarks/results/act_stream.json and prints a Markdown table.

    python benchmarks/act_stream.py [--rounds 3] [--games 304]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "act_stream.json"
CONFIG = ROOT / "examples" / "configs" / "cartpole_ppo.toml"
AGENTS, PER_PROCESS, CLIENT_PROCESSES = 8, 4, 2
TARGET = 1.0


def _config_text(mode: str, games: int) -> str:
    text = CONFIG.read_text().replace("mean_return = 195.0", "mean_return = 1.0e9")
    if mode == "service":
        per_agent = games // AGENTS
        return text.replace(
            'options = { game = "CartPole-v0" }', 'options = { game = "CartPole-v0" }\nserve = true'
        ).replace("games = 200", f"games = {per_agent}")
    return (
        text.replace("count = 8\nper_process = 4\ngames = 200", "count = 0")
        + f"\n[act]\nstreams = {AGENTS}\ngames = {games}\n"
    )


def _drive_streams(address: str, seeds: list[int]) -> None:
    from flare.env_zoo.gym_env import GymEnv
    from flare.learner.act_client import drive

    threads = [
        threading.Thread(target=drive, args=(GymEnv("CartPole-v0", seed=seed), address))
        for seed in seeds
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_once(mode: str, games: int) -> dict[str, float]:
    """One training run; its env steps, wall time and rate."""
    from flare.learner.config import parse_config
    from flare.learner.quiet_run import quiet_run

    with (
        tempfile.TemporaryDirectory() as tmp,
        quiet_run(parse_config(_config_text(mode, games)), Path(tmp) / "run", ROOT) as learner,
    ):
        manager = learner.manager
        clients: list[mp.process.BaseProcess] = []
        if mode == "act":
            thread = threading.Thread(target=learner.run)
            thread.start()
            while learner.address is None and thread.is_alive():
                time.sleep(0.02)
            context = mp.get_context("spawn")
            seeds = list(range(AGENTS))
            for i in range(CLIENT_PROCESSES):
                mine = seeds[i::CLIENT_PROCESSES]
                clients.append(context.Process(target=_drive_streams, args=(learner.address, mine)))
                clients[-1].start()
            thread.join()
            for client in clients:
                client.join(30)
        else:
            learner.run()
    steps, wall = manager.env_steps, manager.wall_s
    return {"games": manager.games_played, "env_steps": steps, "wall_s": wall, "rate": steps / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--games", type=int, default=304)
    args = parser.parse_args()
    rounds = []
    for r in range(args.rounds):
        # (alternating which mode goes first, so a drift in machine speed hits both)
        order = ("service", "act") if r % 2 == 0 else ("act", "service")
        measured = {mode: run_once(mode, args.games) for mode in order}
        measured["ratio"] = measured["act"]["rate"] / measured["service"]["rate"]  # type: ignore[assignment]
        rounds.append(measured)
        print(
            f"round {r + 1}: service {measured['service']['rate']:.0f} steps/s, "
            f"Act {measured['act']['rate']:.0f} steps/s, ratio {measured['ratio']:.2f}",
            flush=True,
        )
    ratio = statistics.median(m["ratio"] for m in rounds)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setup": f"PPO CartPole-v0, {AGENTS} agents, {args.games} games a run, seed 0; "
        f"service: {PER_PROCESS} agents per process on one local `flare serve gym`; "
        f"Act: {CLIENT_PROCESSES} simulator processes x {AGENTS // CLIENT_PROCESSES} streams",
        "rounds": rounds,
        "service_steps_per_s": statistics.median(m["service"]["rate"] for m in rounds),
        "act_steps_per_s": statistics.median(m["act"]["rate"] for m in rounds),
        "ratio_act_over_service": ratio,
        "target": TARGET,
        "met": ratio >= TARGET,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| measure | Act | simulator service | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print(
        f"| env steps/s of the PPO CartPole run | {result['act_steps_per_s']:.0f} | "
        f"{result['service_steps_per_s']:.0f} | {ratio:.2f} | >= {TARGET} | "
        f"{'yes' if result['met'] else 'no'} |"
    )


if __name__ == "__main__":
    main()
