"""Every algorithm of the zoo learns the identity envs (flare.testing.identity) in seconds.

Each test trains one algorithm, seeded, with full batches (``batch_wait_s`` long enough
that every batch holds every agent: the agents play same-length episodes in step), so the
games are the same on any machine and under any load. It asserts the mean return of the
last games reached a threshold far above chance.

The discrete env: 4 actions, 10 steps a game, reward 1 for the action the observation
names. Acting at random scores 2.5 a game, the best is 10. The continuous env: a target in
[-1, 1] each step, reward minus the distance to it, 10 steps a game. Acting at random
scores -6.7 a game, always acting 0 scores -5, the best is 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.auxiliary_agents import RewardPredictionAgent
from flare.algorithm_zoo.ddpg import DDPG
from flare.algorithm_zoo.distributional_q import C51, IQN, QRDQN
from flare.algorithm_zoo.gaussian_ac import GaussianAC
from flare.algorithm_zoo.off_policy_ac import OffPolicyAC
from flare.algorithm_zoo.ppo import PPO
from flare.algorithm_zoo.q_learning import SimpleQ, SimpleSARSA
from flare.algorithm_zoo.reward_prediction import RewardPrediction
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.algorithm_zoo.successor_representation import SuccessorRepresentationQ
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.common.noises import GaussianNoise
from flare.experiments import train_on_env
from flare.framework.agent import ExpReplayHelper, OnlineHelper
from flare.framework.reports import in_play_order
from flare.framework.reward_replay import RewardReplayHelper
from flare.model_zoo.auxiliary_models import RewardPredictionModel
from flare.model_zoo.continuous_models import SimpleModelDeterministic, SimpleModelGaussian
from flare.model_zoo.q_models import SimpleModelQ
from flare.model_zoo.simple_models import SimpleModelAC
from flare.model_zoo.successor_models import SimpleModelSR
from flare.testing.identity import ContinuousIdentityEnv, IdentityEnv

NUM_ACTIONS = 4
EPISODE = 10
NUM_AGENTS = 4
LAST = 40  # games judged: the last 10 of each agent
BATCH_WAIT_S = 30.0  # every batch holds every agent, however loaded the machine

DISCRETE_CHANCE = EPISODE / NUM_ACTIONS  # 2.5: a uniformly random policy
DISCRETE_TARGET = 8.5  # of at most 10
DELAYED_CHANCE = (EPISODE - 1) / NUM_ACTIONS  # 2.25: the last step's action is never paid
DELAYED_TARGET = 7.5  # of at most 9
CONTINUOUS_CHANCE = -EPISODE * 2 / 3  # -6.7: uniformly random actions in [-1, 1]
CONTINUOUS_TARGET = -2.0  # a mean distance of 0.2 a step; acting 0 always scores -5


def _net(inputs: int = NUM_ACTIONS) -> nn.Module:
    return nn.Sequential(nn.Linear(inputs, 32), nn.ReLU())


def _adam(lr: float) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    return (torch.optim.Adam, dict(lr=lr))


def _replay(**overrides: Any) -> dict[str, Any]:
    settings = dict(
        agent_helper=ExpReplayHelper,
        buffer_capacity=2000,
        num_experiences=16,
        sample_interval=1,
        warmup=40,
    )
    return {**settings, **overrides}


def _greedy() -> EpsilonGreedy:
    return EpsilonGreedy(start=1.0, end=0.02, decay_steps=400)


def simple_ac(lr: float) -> dict[str, Any]:
    model = SimpleModelAC((NUM_ACTIONS,), NUM_ACTIONS, _net())
    algorithm = SimpleAC(model, discount_factor=0.5, optim=_adam(lr))
    return dict(algorithm=algorithm, agent_helper=OnlineHelper, sample_interval=5)


def simple_ac_beside_acting(lr: float) -> dict[str, Any]:
    """SimpleAC learning on a thread of its own, the agents acting one update behind."""
    return {**simple_ac(lr), "learn_beside_acting": True}


def ppo(lr: float) -> dict[str, Any]:
    model = SimpleModelAC((NUM_ACTIONS,), NUM_ACTIONS, _net())
    algorithm = PPO(model, discount_factor=0.5, num_epochs=4, minibatch_size=40, optim=_adam(lr))
    return dict(algorithm=algorithm, agent_helper=OnlineHelper, sample_interval=20)


def off_policy_ac(lr: float) -> dict[str, Any]:
    model = SimpleModelAC((NUM_ACTIONS,), NUM_ACTIONS, _net())
    algorithm = OffPolicyAC(
        model, discount_factor=0.5, truncation=2.0, target_tau=0.05, optim=_adam(lr)
    )
    return dict(algorithm=algorithm, **_replay())


def _q_model() -> SimpleModelQ:
    return SimpleModelQ((NUM_ACTIONS,), NUM_ACTIONS, _net(), embedding_dim=16)


def _value_based(algorithm_class: type, lr: float, **kwargs: Any) -> dict[str, Any]:
    algorithm = algorithm_class(
        _q_model(),
        discount_factor=0.5,
        exploration=_greedy(),
        target_update_interval=20,
        optim=_adam(lr),
        **kwargs,
    )
    return dict(algorithm=algorithm, **_replay())


def dqn(lr: float) -> dict[str, Any]:
    return _value_based(SimpleQ, lr)


def sarsa(lr: float) -> dict[str, Any]:
    return _value_based(SimpleSARSA, lr)


def c51(lr: float) -> dict[str, Any]:
    # returns of at most 1 / (1 - 0.5) = 2
    return _value_based(C51, lr, v_min=0.0, v_max=2.5)


def qr_dqn(lr: float) -> dict[str, Any]:
    return _value_based(QRDQN, lr)


def iqn(lr: float) -> dict[str, Any]:
    return _value_based(IQN, lr)


def sr_q(lr: float) -> dict[str, Any]:
    # its reward model is phi(s) . w, a function of the state alone: it learns the env
    # that pays for an action one step later, in the observation it leads to
    model = SimpleModelSR((NUM_ACTIONS + 1,), NUM_ACTIONS, _net(NUM_ACTIONS + 1), 16)
    algorithm = SuccessorRepresentationQ(
        model,
        discount_factor=0.5,
        exploration=_greedy(),
        target_update_interval=20,
        optim=_adam(lr),
    )
    return dict(algorithm=algorithm, **_replay())


def ddpg(lr: float) -> dict[str, Any]:
    model = SimpleModelDeterministic((1,), (-1.0,), (1.0,), hidden=(32,))
    algorithm = DDPG(
        model,
        discount_factor=0.5,
        tau=0.05,
        actor_lr=lr,
        critic_lr=lr,
        noise=GaussianNoise((NUM_AGENTS, 1), sigma=0.1, seed=0),
    )
    return dict(algorithm=algorithm, **_replay())


def gaussian_ac(lr: float) -> dict[str, Any]:
    model = SimpleModelGaussian((1,), (-1.0,), (1.0,), hidden=(32,), init_log_std=-1.0)
    algorithm = GaussianAC(
        model, discount_factor=0.5, num_epochs=4, minibatch_size=40, optim=_adam(lr)
    )
    return dict(algorithm=algorithm, agent_helper=OnlineHelper, sample_interval=20)


# algorithm: (CT settings from a learning rate, the rate, games per agent, env)
CASES = {
    "simple_ac": (simple_ac, 1e-2, 40, "discrete"),
    "simple_ac_beside_acting": (simple_ac_beside_acting, 1e-2, 40, "discrete"),
    "ppo": (ppo, 1e-2, 30, "discrete"),
    "off_policy_ac": (off_policy_ac, 1e-2, 25, "discrete"),
    "dqn": (dqn, 1e-2, 25, "discrete"),
    "sarsa": (sarsa, 1e-2, 25, "discrete"),
    "c51": (c51, 1e-2, 25, "discrete"),
    "qr_dqn": (qr_dqn, 1e-2, 25, "discrete"),
    "iqn": (iqn, 1e-2, 25, "discrete"),
    "sr_q": (sr_q, 1e-2, 30, "delayed"),
    "ddpg": (ddpg, 1e-2, 30, "continuous"),
    "gaussian_ac": (gaussian_ac, 1e-2, 30, "continuous"),
}


ENVS = {
    "discrete": (IdentityEnv, dict(num_actions=NUM_ACTIONS, episode_length=EPISODE)),
    "delayed": (
        IdentityEnv,
        dict(num_actions=NUM_ACTIONS, episode_length=EPISODE, delayed_reward=True),
    ),
    "continuous": (ContinuousIdentityEnv, dict(episode_length=EPISODE)),
}
# env: (chance, threshold)
THRESHOLDS = {
    "discrete": (DISCRETE_CHANCE, DISCRETE_TARGET),
    "delayed": (DELAYED_CHANCE, DELAYED_TARGET),
    "continuous": (CONTINUOUS_CHANCE, CONTINUOUS_TARGET),
}


def _last_mean(manager: Any, last: int = LAST) -> float:
    return float(np.mean([r.return_ for r in in_play_order(manager.stats)[-last:]]))


def train(name: str, seed: int = 0, lr: float | None = None) -> Any:
    """Train case ``name``; ``lr=0`` is the broken learner the thresholds must fail."""
    make, default_lr, games, env = CASES[name]
    torch.manual_seed(seed)
    settings = make(default_lr if lr is None else lr)
    settings["batch_wait_s"] = BATCH_WAIT_S
    env_class, env_kwargs = ENVS[env]
    return train_on_env(
        {"RL": settings}, env_class, env_kwargs, NUM_AGENTS, games, seed,
        agents_per_process=NUM_AGENTS,
    )  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_algorithm_learns_identity(name, no_stray_processes):
    manager = train(name)
    mean = _last_mean(manager)
    chance, target = THRESHOLDS[CASES[name][3]]
    assert target > chance + 4  # the threshold is well above chance
    assert mean >= target, f"{name}: mean return of the last {LAST} games {mean:.2f}"


MISS_CHANCE = EPISODE * (1 - (NUM_ACTIONS - 1)) / NUM_ACTIONS  # -5: a miss costs 1
MISS_TARGET = 7.0  # of at most 10
ACCURACY_CHANCE = 0.5  # the reward-prediction batches are half positive, half negative
ACCURACY_TARGET = 0.9


def train_with_reward_prediction(seed: int = 0, lr: float = 1e-2, aux_lr: float = 1e-2) -> Any:
    """SimpleAC acting, plus UNREAL's reward prediction (an auxiliary task that never acts:
    it classifies the sign of a step's reward from the observation and the action) on the
    env whose misses cost 1, so rewards have both signs."""
    torch.manual_seed(seed)
    net = _net()
    rl_model = SimpleModelAC((NUM_ACTIONS,), NUM_ACTIONS, net)
    aux_model = RewardPredictionModel((NUM_ACTIONS,), NUM_ACTIONS, perception_net=net)
    settings = {
        "RL": dict(
            algorithm=SimpleAC(rl_model, discount_factor=0.5, optim=_adam(lr)),
            agent_helper=OnlineHelper,
            sample_interval=5,
            batch_wait_s=BATCH_WAIT_S,
        ),
        "reward_prediction": dict(
            algorithm=RewardPrediction(aux_model, optim=_adam(aux_lr)),
            agent_helper=RewardReplayHelper,
            buffer_capacity=100,
            num_experiences=8,
            sample_interval=5,
            warmup=4,
            batch_wait_s=BATCH_WAIT_S,
        ),
    }
    env_kwargs = dict(num_actions=NUM_ACTIONS, episode_length=EPISODE, miss_reward=-1.0)
    return train_on_env(
        settings, IdentityEnv, env_kwargs, NUM_AGENTS, 40, seed,
        agents_per_process=NUM_AGENTS, agent_factory=RewardPredictionAgent,
    )  # fmt: skip


def _last_accuracy(manager: Any, last: int = LAST) -> float:
    games = in_play_order(manager.stats)[-last:]
    return float(np.mean([r.costs["reward_prediction/accuracy"] for r in games]))


def test_reward_prediction_learns_beside_the_rl_task(no_stray_processes):
    manager = train_with_reward_prediction()
    mean, accuracy = _last_mean(manager), _last_accuracy(manager)
    assert MISS_TARGET > MISS_CHANCE + 4 and ACCURACY_TARGET > ACCURACY_CHANCE + 0.3
    assert mean >= MISS_TARGET, f"mean return of the last {LAST} games {mean:.2f}"
    assert accuracy >= ACCURACY_TARGET, f"reward-sign accuracy of the last games {accuracy:.2f}"
