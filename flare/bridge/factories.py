"""Env factories that `flare serve` hosts: the bundled Gym and MiniGrid adapters, or a
user's own."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from flare.env_zoo.gym_env import GymEnv, GymEnvImage
from flare.framework.env import Env

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(name: str, value: str | bool) -> bool:
    """A session config's yes/no value (config values travel as strings)."""
    if isinstance(value, bool):
        return value
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _positive(name: str, value: str | int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {number}")
    return number


@dataclass(frozen=True)
class GymEnvFactory:
    """Builds ``GymEnv`` (or ``GymEnvImage`` with ``image``) sessions; the client's config
    strings override these defaults, key by key."""

    game_name: str | None = None
    image: bool = False
    height: int = 84
    width: int = 84
    gray: bool = False
    contexts: int = 4

    def __call__(
        self,
        game_name: str | None = None,
        image: str | bool | None = None,
        height: str | int | None = None,
        width: str | int | None = None,
        gray: str | bool | None = None,
        contexts: str | int | None = None,
        seed: int | None = None,
    ) -> Env:
        game = game_name or self.game_name
        if not game:
            raise ValueError(
                "no game: start the server with --game or send game_name in the config"
            )
        if not _flag("image", self.image if image is None else image):
            return GymEnv(game, seed=seed)
        return GymEnvImage(
            game,
            contexts=_positive("contexts", self.contexts if contexts is None else contexts),
            height=_positive("height", self.height if height is None else height),
            width=_positive("width", self.width if width is None else width),
            gray=_flag("gray", self.gray if gray is None else gray),
            seed=seed,
        )


@dataclass(frozen=True)
class MiniGridEnvFactory:
    """Builds ``MiniGridEnv`` sessions (BabyAI / MiniGrid levels); the client's config
    strings (``level``, ``actions``, ``instruction_length``) override these defaults, key
    by key, and the session's seed seeds the level."""

    level: str | None = None
    actions: str = "auto"
    instruction_length: int | None = None
    wrong_object_ends: bool = False

    def __call__(
        self,
        level: str | None = None,
        actions: str | None = None,
        instruction_length: str | int | None = None,
        wrong_object_ends: str | bool | None = None,
        seed: int | None = None,
    ) -> Env:
        # (imported here: minigrid loads pygame, which a Gym server does not need)
        from flare.env_zoo.minigrid_env import DEFAULT_INSTRUCTION_LENGTH, MiniGridEnv

        name = level or self.level
        if not name:
            raise ValueError("no level: start the server with --level or send level in the config")
        length = self.instruction_length if instruction_length is None else instruction_length
        return MiniGridEnv(
            name,
            seed=seed,
            actions=actions or self.actions,
            instruction_length=_positive(
                "instruction_length", DEFAULT_INSTRUCTION_LENGTH if length is None else length
            ),
            wrong_object_ends=(
                self.wrong_object_ends
                if wrong_object_ends is None
                else _flag("wrong_object_ends", wrong_object_ends)
            ),
        )


def load_factory(target: str) -> Callable[..., Env]:
    """``"package.module:function"`` -> that callable."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected MODULE:FACTORY (e.g. my_sim:make_env), got {target!r}")
    module = importlib.import_module(module_name)
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attr!r}") from None
    if not callable(factory):
        raise ValueError(f"{target} is not callable")
    return factory
