"""Agent pipeline speed against an earlier revision, measured in one run on this machine.

FLARE's PPO CartPole run (8 agents, 4 per process, full batches: 256 transitions per
update) plays a fixed budget of games in-process, once with this working tree and once
with the revision ``--baseline`` (checked out into a temporary git worktree), in
alternating order. Each run is seeded, so both trees must play exactly the same games
(same total steps, checked); what may differ is the time they take. Reported: env
steps/s of the whole training loop per tree (median of the repeats) and their ratio.

Written for changes to the agents' pipes and the CDP (e.g. how a process's stacked
requests are batched): a ratio >= 1 shows the change did not slow the run.
Writes benchmarks/results/pipeline.json.

    python benchmarks/pipeline.py --baseline 92af323 [--games 25] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pipeline.json"

# Runs inside a child whose PYTHONPATH selects the tree; only APIs both trees share.
WORKER = r"""
import json, sys, time
import torch
import flare
from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.ppo import PPO
from flare.framework.agent import OnlineHelper
from flare.framework.env import GymEnv
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC

games = int(sys.argv[1])
torch.manual_seed(0)
body = torch.nn.Sequential(
    torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh()
)
algorithm = PPO(
    SimpleModelAC((4,), 2, body), discount_factor=0.98, gae_lambda=0.8, num_epochs=10,
    minibatch_size=128, optim=(torch.optim.Adam, dict(lr=2.5e-3)),
)
settings = dict(algorithm=algorithm, agent_helper=OnlineHelper, sample_interval=32,
                batch_wait_s=1.0)
manager = Manager({"RL": settings}, dict(print_interval_s=0), agents_per_process=4)
for i in range(8):
    agent = SimpleRLAgent(games, reward_shaping_f=lambda r: r / 10.0)
    agent.set_env(GymEnv, game_name="CartPole-v0", seed=i)
    manager.add_agent(agent)
start = time.perf_counter()
manager.start()
wall = time.perf_counter() - start
steps = sum(r.length for r in manager.stats)
print(json.dumps(dict(flare=flare.__file__, steps=steps, games=len(manager.stats), wall_s=wall)))
"""


def _measure(tree: Path, games: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(games)],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if not result["flare"].startswith(str(tree)):
        raise RuntimeError(f"the run imported {result['flare']}, not the tree {tree}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the revision to compare with")
    parser.add_argument("--games", type=int, default=25, help="games per agent (8 agents)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    baseline_rev = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    current_rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="flare-baseline-") as scratch:
        baseline_tree = Path(scratch) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline_tree), baseline_rev],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        try:
            rates: dict[str, list[float]] = {"current": [], "baseline": []}
            steps: dict[str, set[int]] = {"current": set(), "baseline": set()}
            for repeat in range(args.repeats):
                order = ("baseline", "current") if repeat % 2 == 0 else ("current", "baseline")
                for name in order:
                    tree = ROOT if name == "current" else baseline_tree
                    result = _measure(tree, args.games)
                    rates[name].append(result["steps"] / result["wall_s"])
                    steps[name].add(result["steps"])
                    print(
                        f"repeat {repeat + 1} {name:<8} {result['steps']} steps in "
                        f"{result['wall_s']:.2f} s: {rates[name][-1]:.0f} steps/s",
                        flush=True,
                    )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline_tree)],
                cwd=ROOT, check=False, capture_output=True,
            )  # fmt: skip
    if steps["current"] != steps["baseline"] or len(steps["current"]) != 1:
        raise SystemExit(f"the trees played different games: steps {steps}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ratio = medians["current"] / medians["baseline"]
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "run": "PPO CartPole-v0, 8 agents, 4 per process, in-process Gym, "
        f"{args.games} games per agent",
        "current": current_rev + " + working tree",
        "baseline": baseline_rev,
        "steps_per_run": steps["current"].pop(),
        "env_steps_per_s_median": {k: round(v, 1) for k, v in medians.items()},
        "ratio_current_vs_baseline": round(ratio, 3),
        "raw_steps_per_s": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"current {medians['current']:.0f} steps/s vs baseline {baseline_rev} "
        f"{medians['baseline']:.0f} steps/s: ratio {ratio:.3f}"
    )


if __name__ == "__main__":
    main()
