"""How agent processes start: fork, forkserver, and what "auto" picks once gRPC is loaded."""

import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv, serve
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.framework.process_start import resolve_start_method
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing import ChainEnv


def _manager(num_agents: int, **manager_kwargs) -> Manager:
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[1], num_actions=2, perception_net=nn.Linear(1, 8))
    alg = SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))
    settings = {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=2)}
    return Manager(settings, dict(print_interval_s=0), **manager_kwargs)


def test_auto_forks_until_grpc_is_loaded():
    assert resolve_start_method("auto", modules={}) == "fork"
    assert resolve_start_method("auto", modules={"grpc": object()}) == "forkserver"
    assert resolve_start_method("fork", modules={"grpc": object()}) == "fork"
    assert resolve_start_method("forkserver", modules={}) == "forkserver"


def test_an_unknown_start_method_is_refused_when_the_manager_is_built():
    with pytest.raises(ValueError, match=r"start_method must be one of .*'spawn'"):
        _manager(1, start_method="spawn")


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_agents_holding_lambdas_and_script_classes_run_under_each_start_method(
    start_method, tmp_path, no_stray_processes
):
    # A class defined here, not importable by name, and a lambda: what a training script
    # holds. Under a forkserver both travel by value (cloudpickle), with the agents' pipes.
    class ParentRecordingChain(ChainEnv):
        def __init__(self, out_dir: str, **kwargs) -> None:
            super().__init__(**kwargs)
            Path(out_dir, f"{os.getpid()}.ppid").write_text(str(os.getppid()))

    manager = _manager(4, start_method=start_method, agents_per_process=2)
    for _ in range(4):
        agent = SimpleRLAgent(3, reward_shaping_f=lambda r: r / 100.0)
        agent.set_env(ParentRecordingChain, out_dir=str(tmp_path), max_steps=5)
        manager.add_agent(agent)
    manager.start()

    assert len(manager.stats) == 12
    assert all(r.length == 5 and r.return_ == 5.0 for r in manager.stats)
    parents = {int(p.read_text()) for p in tmp_path.glob("*.ppid")}
    assert len(list(tmp_path.glob("*.ppid"))) == 2  # two processes of two agents
    if start_method == "fork":
        assert parents == {os.getpid()}
    else:  # children of the forkserver, a fresh interpreter
        assert len(parents) == 1 and os.getpid() not in parents


def _chain(seed: int | None = None, **config) -> ChainEnv:
    return ChainEnv(goal=1000, max_steps=int(config.get("max_steps", 5)))


def test_agents_reach_a_simulator_while_the_learner_holds_grpc_open(no_stray_processes):
    """The seed's script with RemoteEnv: the learner reads the dims from a RemoteEnv it
    leaves open, here while it also hosts the server. Forked agents would inherit both
    (their sessions then fail with "Wrong file descriptor generation" or abort); with the
    default start method every agent plays every game."""
    server = serve(_chain)
    probe = RemoteEnv(server.address, max_steps=5)
    try:
        assert probe.observation_dims() == {"sensor": (1,)}
        manager = _manager(6)
        for _ in range(6):
            agent = SimpleRLAgent(4)
            agent.set_env(RemoteEnv, address=server.address, max_steps=5)
            manager.add_agent(agent)
        manager.start()

        assert len(manager.stats) == 24
        assert all(r.length == 5 and r.return_ == 5.0 for r in manager.stats)
        # the learner's own session still steps
        probe.reset()
        _, rewards, _ = probe.step({"action": np.array([1])})
        assert rewards["reward"][0] == 1.0
    finally:
        probe.close()
        server.stop(0)


def test_an_agent_that_cannot_travel_to_a_forkserver_is_a_clear_error(no_stray_processes):
    manager = _manager(2, start_method="forkserver")
    for index in range(2):
        agent = SimpleRLAgent(2)
        agent.set_env(ChainEnv, max_steps=5)
        if index == 1:
            agent.lock = threading.Lock()  # built before start(): cannot be pickled
        manager.add_agent(agent)
    with pytest.raises(pickle.PicklingError, match=r"cannot be: TypeError: .*lock.*env factory"):
        manager.start()
