import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC
from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.framework.agent import OnlineHelper
from flare.env_zoo.gym_env import GymEnvImage
from flare.framework.common_functions import Flatten

if __name__ == "__main__":
    """
    A demo of how to train from image inputs
    """
    # Optional flags; the defaults are the seed's, but for the GPU: the first one if
    # there is one, else the CPU. Any of ale-py's games: --game Assault, ALE/Pong-v5.
    parser = argparse.ArgumentParser(description="The seed's Atari actor-critic, from pixels")
    parser.add_argument("--game", default="Breakout-v0", help="an Atari game")
    parser.add_argument("--num-games", type=int, default=8000, help="games per agent")
    parser.add_argument(
        "--gpu-id",
        type=int,
        default=0 if torch.cuda.is_available() else -1,
        help="the CUDA device of the model; -1: the CPU",
    )
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    parser.add_argument("--model-dir", help="save the model to MODEL_DIR/RL.pt when the run ends")
    args = parser.parse_args()

    game = args.game

    num_agents = 16
    num_games = args.num_games

    im_height, im_width = 84, 84
    env = GymEnvImage(game, contexts=4, height=im_height, width=im_width, gray=True)
    d, h, w = env.observation_dims()["sensor"]
    num_actions = env.action_dims()["action"]

    # 1. Spawn one agent for each instance of environment.
    #    Agent's behavior depends on the actual algorithm being used. Since we
    #    are using SimpleAC, a proper type of Agent is SimpleRLAgent.
    agents = []
    for _ in range(num_agents):
        agent = SimpleRLAgent(num_games, reward_shaping_f=np.sign)
        agent.set_env(
            GymEnvImage,
            game_name=game,
            contexts=4,
            height=im_height,
            width=im_width,
            gray=True,
        )
        agents.append(agent)

    # 2. Construct the network and specify the algorithm.
    #    Here we use a small CNN as the perception net for the Actor-Critic algorithm
    cnn = nn.Sequential(
        nn.Conv2d(d, 32, kernel_size=8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1),
        nn.ReLU(),
        Flatten(),  # flatten the CNN cube to a vector
        nn.Linear(7 * 7 * 64, 512),
        nn.ReLU(),
    )

    alg = SimpleAC(
        model=SimpleModelAC(dims=(d, h, w), num_actions=num_actions, perception_net=cnn),
        optim=(optim.RMSprop, dict(lr=1e-4)),
        grad_clip=5.0,
        gpu_id=args.gpu_id,
    )

    # 3. Specify the settings for learning: data sampling strategy
    # (OnlineHelper here) and other settings used by
    # ComputationTask.
    ct_settings = {
        "RL": dict(
            algorithm=alg,
            # sampling
            agent_helper=OnlineHelper,
            # each agent will call `learn()` every `sample_interval` steps
            sample_interval=5,
            num_agents=num_agents,
        )
    }

    # 4. Create Manager that handles the running of the whole pipeline
    log_settings = dict(log_dir=args.log_dir, model_dir=args.model_dir)
    manager = Manager(ct_settings, log_settings)
    manager.add_agents(agents)
    manager.start()
