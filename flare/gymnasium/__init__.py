"""Any FLARE simulator for other RL libraries: a ``gymnasium.Env`` over one session and a
``gymnasium.vector.VectorEnv`` over many (across a farm), registered as
``flare/Remote-v0``:

    import gymnasium
    import flare.gymnasium  # registers flare/Remote-v0

    env = gymnasium.make("flare/Remote-v0", address="127.0.0.1:50051")
    envs = gymnasium.make_vec("flare/Remote-v0", num_envs=16,
                              vectorization_mode="vector_entry_point", address="farm.txt")
"""

import gymnasium

from flare.gymnasium.env import RemoteGymEnv
from flare.gymnasium.spaces import action_space, observation_space
from flare.gymnasium.vector import RemoteVectorEnv

ENV_ID = "flare/Remote-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="flare.gymnasium.env:RemoteGymEnv",
        vector_entry_point="flare.gymnasium.vector:RemoteVectorEnv",
    )

__all__ = ["ENV_ID", "RemoteGymEnv", "RemoteVectorEnv", "action_space", "observation_space"]
