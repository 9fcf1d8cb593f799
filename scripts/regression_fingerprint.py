"""Seeded runs as a regression oracle: the games each plays and a hash of its final weights.

A refactor must keep both. Run it before and after a change and compare the two files:

    python scripts/regression_fingerprint.py > before.json
    ...change...
    python scripts/regression_fingerprint.py > after.json && diff before.json after.json

Every run uses full batches (a long ``batch_wait_s``), so its games do not depend on timing.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent, SimpleRNNRLAgent
from flare.algorithm_zoo.ppo import PPO
from flare.algorithm_zoo.q_learning import SimpleQ
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.bridge import RemoteEnv
from flare.bridge.factories import GymEnvFactory
from flare.bridge.server import serve
from flare.env_zoo.memory_cue import CueMemoryEnv
from flare.framework.agent import ExpReplayHelper, OnlineHelper
from flare.framework.algorithm import Algorithm
from flare.framework.env import GymEnv
from flare.framework.manager import Manager
from flare.model_zoo.q_models import SimpleModelQ
from flare.model_zoo.rnn_models import SimpleRNNModelAC, SimpleRNNModelQ
from flare.model_zoo.simple_models import SimpleModelAC

GAMES = 12


def _digest(alg: Algorithm) -> str:
    hasher = hashlib.sha256()
    for name, tensor in sorted(alg.model.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()[:16]


def _run(
    alg: Algorithm,
    helper: dict[str, Any],
    agent_class: type,
    env: Callable[[int], tuple[Any, dict[str, Any]]],
    agents: int = 4,
    per_process: int = 1,
) -> dict[str, Any]:
    settings = dict(algorithm=alg, batch_wait_s=5.0, **helper)
    manager = Manager({"RL": settings}, dict(print_interval_s=0), agents_per_process=per_process)
    for i in range(agents):
        agent = agent_class(GAMES)
        env_class, kwargs = env(i)
        agent.set_env(env_class, **kwargs)
        manager.add_agent(agent)
    manager.start()
    games = sorted((r.agent, r.agent_game, round(r.return_, 6), r.length) for r in manager.stats)
    return {"games": games, "weights": _digest(alg)}


def _mlp(inputs: int) -> nn.Module:
    return nn.Sequential(nn.Linear(inputs, 32), nn.Tanh())


def _cartpole(i: int) -> tuple[Any, dict[str, Any]]:
    return GymEnv, dict(game_name="CartPole-v0", seed=100 + i)


def _cue(i: int) -> tuple[Any, dict[str, Any]]:
    return CueMemoryEnv, dict(delay=3, seed=200 + i)


def main() -> None:
    runs: dict[str, Any] = {}
    torch.manual_seed(0)
    ac = SimpleAC(SimpleModelAC((4,), 2, _mlp(4)), optim=(optim.RMSprop, dict(lr=1e-3)))
    online = dict(agent_helper=OnlineHelper, sample_interval=4)
    runs["ac"] = _run(ac, online, SimpleRLAgent, _cartpole)
    torch.manual_seed(1)
    ac = SimpleAC(SimpleModelAC((4,), 2, _mlp(4)), optim=(optim.RMSprop, dict(lr=1e-3)))
    runs["ac_grouped"] = _run(ac, online, SimpleRLAgent, _cartpole, per_process=2)
    torch.manual_seed(2)
    ppo = PPO(
        SimpleModelAC((4,), 2, _mlp(4)), num_epochs=2, minibatch_size=16,
        optim=(optim.Adam, dict(lr=1e-3)),
    )  # fmt: skip
    runs["ppo"] = _run(
        ppo, dict(agent_helper=OnlineHelper, sample_interval=16), SimpleRLAgent, _cartpole,
        per_process=4,
    )  # fmt: skip
    torch.manual_seed(3)
    dqn = SimpleQ(
        SimpleModelQ((4,), 2, _mlp(4)),
        exploration=EpsilonGreedy(start=1.0, end=0.05, decay_steps=300),
        target_update_interval=20,
        optim=(optim.Adam, dict(lr=1e-3)),
    )
    replay = dict(
        agent_helper=ExpReplayHelper, buffer_capacity=500, num_experiences=8, sample_interval=2,
        warmup=32, prioritized=True, beta_anneal_learns=100,
    )  # fmt: skip
    runs["dqn_prioritized"] = _run(dqn, replay, SimpleRLAgent, _cartpole, per_process=2)
    torch.manual_seed(4)
    rnn_ac = SimpleAC(
        SimpleRNNModelAC((CueMemoryEnv(3).observation_dims()["sensor"][0],), 2, _mlp(3)),
        optim=(optim.Adam, dict(lr=1e-3)),
    )
    runs["rnn_ac"] = _run(
        rnn_ac, dict(agent_helper=OnlineHelper, sample_interval=12), SimpleRNNRLAgent, _cue
    )
    torch.manual_seed(5)
    drqn = SimpleQ(
        SimpleRNNModelQ((3,), 2, _mlp(3)),
        exploration=EpsilonGreedy(start=1.0, end=0.05, decay_steps=200),
        target_update_interval=20,
        optim=(optim.Adam, dict(lr=1e-3)),
    )
    sequences = dict(
        agent_helper=ExpReplayHelper, buffer_capacity=500, num_experiences=4, sample_interval=4,
        sequence_length=5, warmup=20,
    )  # fmt: skip
    runs["drqn_sequences"] = _run(drqn, sequences, SimpleRNNRLAgent, _cue, per_process=2)
    # over the bridge: one in-process simulator server, the agents' RemoteEnvs on it
    server = serve(GymEnvFactory("CartPole-v0"))
    try:
        torch.manual_seed(6)
        ac = SimpleAC(SimpleModelAC((4,), 2, _mlp(4)), optim=(optim.RMSprop, dict(lr=1e-3)))

        def remote(i: int) -> tuple[Any, dict[str, Any]]:
            return RemoteEnv, dict(address=server.address, seed=300 + i)

        runs["ac_remote"] = _run(ac, online, SimpleRLAgent, remote, per_process=2)
    finally:
        server.stop()
    json.dump(runs, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
