"""Atari games as the deep-RL literature plays them, from Gymnasium's and ale-py's own parts.

The preprocessing of Mnih et al. (2015), as Gymnasium's ``AtariPreprocessing`` does it:
up to 30 no-op actions after a reset, every action repeated for 4 frames with the last
two max-pooled (the Atari flickers), frames gray (or colour) and resized; optionally a
lost life ends the episode. FIRE is pressed after each reset in games that wait for it
(Breakout's ball never comes otherwise). The games and their ROMs come with ale-py.

Frames stay uint8 here; ``GymEnvImage`` stacks them and a model's CT turns them into
floats in [0, 1], once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing

ALE_ENTRY_POINT = "ale_py.env:AtariEnv"
FIRE = "FIRE"


@dataclass(frozen=True)
class AtariSettings:
    """How an Atari game is played (the defaults are the literature's).

    Attributes:
        noop_max: at most this many no-op actions start each episode (0: none).
        frame_skip: frames each action is repeated for (the last two max-pooled).
        life_loss_ends_game: a lost life ends the episode (the agent learns that dying
            is bad sooner); the game's own end is then one of several.
        fire_on_reset: press FIRE after each reset in games whose actions include it.
    """

    noop_max: int = 30
    frame_skip: int = 4
    life_loss_ends_game: bool = False
    fire_on_reset: bool = True

    def __post_init__(self) -> None:
        if self.noop_max < 0 or self.frame_skip < 1:
            raise ValueError(
                f"noop_max must be >= 0 and frame_skip >= 1, got {self.noop_max}, {self.frame_skip}"
            )


def register_ale_games() -> None:
    """Make ale-py's games known to Gymnasium (``ALE/Breakout-v5``, ``Breakout-v0``, ...)."""
    import ale_py

    gym.register_envs(ale_py)


def game_id(name: str) -> str:
    """``name`` as Gymnasium knows it: ale-py's games are registered on first use, and a
    bare Atari name (``Breakout``, ``Assault``) is its current version (``ALE/Breakout-v5``)."""
    if ":" in name or name in gym.registry:
        return name  # (a module's own game, or a registered one)
    try:
        register_ale_games()
    except ImportError:
        return name
    current = f"ALE/{name}-v5"
    return current if name not in gym.registry and current in gym.registry else name


def is_atari(game_name: str) -> bool:
    """Whether ``game_name`` (as ``game_id`` resolves it) is one of ale-py's games."""
    spec = gym.registry.get(game_id(game_name))
    return spec is not None and spec.entry_point == ALE_ENTRY_POINT


def preprocess_atari(
    env: gym.Env, height: int, width: int, gray: bool, settings: AtariSettings | None = None
) -> gym.Env:
    """An Atari game made with ``frameskip=1`` (the preprocessing skips and pools), as
    uint8 frames ``(height, width)`` gray or ``(height, width, 3)`` in colour."""
    settings = settings or AtariSettings()
    env = AtariPreprocessing(
        env,
        noop_max=settings.noop_max,
        frame_skip=settings.frame_skip,
        screen_size=(width, height),  # (cv2's order)
        terminal_on_life_loss=settings.life_loss_ends_game,
        grayscale_obs=gray,
        scale_obs=False,
    )
    if settings.fire_on_reset and FIRE in action_meanings(env):
        env = FireOnReset(env)
    return env


def action_meanings(env: gym.Env) -> list[str]:
    """The game's actions by name (``NOOP``, ``FIRE``, ...), as ale-py's AtariEnv says."""
    meanings: list[str] = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    return meanings


class FireOnReset(gym.Wrapper):
    """Presses FIRE once after every reset, in a game that waits for it to start.

    Gymnasium has no wrapper for this one step of the standard Atari preprocessing. Should
    the FIRE end the episode (no ALE game does), the game is reset once more, so a reset
    always returns a live frame.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._fire = action_meanings(env).index(FIRE)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(self._fire)
        if terminated or truncated:
            obs, info = self.env.reset()
        return obs, info
