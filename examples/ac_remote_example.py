"""The seed's CartPole actor-critic, trained against a simulator over gRPC.

Without --address it starts a local simulator server (`flare serve gym --game
CartPole-v0`) for the run and stops it afterwards; with --address it uses yours.
Compared with ac_example.py only the environment lines change: RemoteEnv instead of
GymEnv.
"""

import argparse

import torch.nn as nn
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.bridge.launch import flare_serve_gym, simulator_process
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC


def train(address, game, num_games, log_dir, model_dir, stop_at_return):
    num_agents = 16

    env = RemoteEnv(address, game_name=game)
    state_shape = env.observation_dims()["sensor"]
    num_actions = env.action_dims()["action"]
    env.close()

    reward_shaping_f = lambda x: x / 100.0
    agents = []
    for _ in range(num_agents):
        agent = SimpleRLAgent(num_games, reward_shaping_f=reward_shaping_f)
        agent.set_env(RemoteEnv, address=address, game_name=game)
        agents.append(agent)

    mlp = nn.Sequential(
        nn.Linear(state_shape[0], 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
    )

    alg = SimpleAC(
        model=SimpleModelAC(dims=state_shape, num_actions=num_actions, perception_net=mlp),
        optim=(optim.RMSprop, dict(lr=5e-5)),
        gpu_id=-1,
    )

    ct_settings = {
        "RL": dict(
            algorithm=alg, agent_helper=OnlineHelper, sample_interval=4, num_agents=num_agents
        )
    }

    manager = Manager(ct_settings, dict(log_dir=log_dir, model_dir=model_dir))
    manager.add_agents(agents)
    manager.start(stop_at_mean_return=stop_at_return)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="a running simulator (default: start a local one)")
    parser.add_argument("--game", default="CartPole-v0")
    parser.add_argument("--num-games", type=int, default=8000, help="games per agent")
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    parser.add_argument("--model-dir", help="save the model to MODEL_DIR/RL.pt at the end")
    parser.add_argument(
        "--stop-at-return", type=float, help="stop once the mean of the last 100 games reaches it"
    )
    args = parser.parse_args()
    if args.address:
        train(
            args.address,
            args.game,
            args.num_games,
            args.log_dir,
            args.model_dir,
            args.stop_at_return,
        )
    else:
        with simulator_process(flare_serve_gym(args.game)) as address:
            print(f"local simulator for {args.game} on {address}", flush=True)
            train(
                address,
                args.game,
                args.num_games,
                args.log_dir,
                args.model_dir,
                args.stop_at_return,
            )
