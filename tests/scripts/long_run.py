"""A run that would last for hours: the shutdown tests stop it with a signal."""

import sys

import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing import ChainEnv

if __name__ == "__main__":
    out_dir = sys.argv[1]
    agents_per_process = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    start_method = sys.argv[3] if len(sys.argv) > 3 else "auto"
    model = SimpleModelAC(dims=[1], num_actions=2, perception_net=nn.Linear(1, 8))
    alg = SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))
    manager = Manager(
        {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=4)},
        dict(log_dir=out_dir, model_dir=out_dir, print_interval_s=0.5),
        agents_per_process=agents_per_process,
        start_method=start_method,
    )
    for _ in range(4):
        agent = SimpleRLAgent(10**9)
        agent.set_env(ChainEnv, max_steps=50)
        manager.add_agent(agent)
    manager.start()
    print(f"stopped_by={manager.stopped_by_signal} games={len(manager.stats)}", flush=True)
