"""A user's own Env factory, served by `flare serve tests.scripts.sim_factory:make_env`."""

from flare.testing import ChainEnv


def make_env(goal: str = "1000", max_steps: str = "5", seed: int | None = None) -> ChainEnv:
    return ChainEnv(goal=int(goal), max_steps=int(max_steps))
