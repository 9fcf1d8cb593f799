"""Language-directed navigation in 3D: MiniWorld rooms with objects of several shapes and
colours, an instruction such as "go to the red ball", and the ``miniworld`` adapter of
``flare serve``.

In the spirit of XWorld3D (the original FLARE's tutorial world): the agent sees its
first-person RGB view and reads the instruction as token ids of the shared vocabulary
(``flare.env_zoo.instructions``, the BabyAI one); touching the named object is a
success, touching another a failure, the level's step limit a time-out. MiniWorld
renders with OpenGL; this module asks pyglet for a headless EGL context before anything
imports pyglet's GL, so a server needs no display and no environment variables (Mesa's
software renderer serves where there is no GPU).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyglet

pyglet.options["headless"] = True  # (before pyglet.gl and pyglet.window are imported)

# OpenGL contexts belong to threads: a frame rendered once GL was used from another thread
# came out different (seen: the sky alone). So every MiniWorld call of this process
# (building, reset, step, close: each may render) runs on one thread of its own,
# whichever of a server's threads asks, one at a time; pyglet's shadow window, whose
# context every env's shares, is made there too, by importing MiniWorld there.
_GL_THREAD_NAME = "flare-miniworld-gl"
_GL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_GL_THREAD_NAME)
_GL_THREAD.submit(importlib.import_module, "miniworld.miniworld").result()

T = TypeVar("T")


def _on_gl_thread(call: Callable[..., T], *args: Any) -> T:
    if threading.current_thread().name.startswith(_GL_THREAD_NAME):
        return call(*args)
    return _GL_THREAD.submit(call, *args).result()


from gymnasium import spaces  # noqa: E402
from miniworld import opengl as miniworld_opengl  # noqa: E402
from miniworld.entity import COLOR_NAMES, Ball, Box, Entity, Key  # noqa: E402
from miniworld.miniworld import MiniWorldEnv  # noqa: E402
from miniworld.params import DEFAULT_PARAMS  # noqa: E402

from flare.env_zoo.gym_env import GymEnv  # noqa: E402
from flare.env_zoo.instructions import VOCABULARY, tokenize  # noqa: E402
from flare.env_zoo.registry import Adapter, ServedEnv, config_int  # noqa: E402
from flare.framework.env import ActionDict, ObservationDict, RewardDict  # noqa: E402
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec, Language  # noqa: E402

IMAGE = "image"
INSTRUCTION = "instruction"
ACTION = "action"
REWARD = "reward"

SHAPES: tuple[str, ...] = ("ball", "box", "key")
COLOURS: tuple[str, ...] = tuple(COLOR_NAMES)  # blue green grey purple red yellow
INSTRUCTION_LENGTH = 5  # "go to the red ball"
# moves: MiniWorld's first three actions (turn left, turn right, move forward)
NUM_ACTIONS = 3
FORWARD_STEP_M = 0.5  # coarse moves, as MiniWorld's "Fast" variants: fewer steps a game
TURN_STEP_DEG = 30.0
# the camera looks down, with a wide view: at MiniWorld's eye level (pitch 0, 60 degrees)
# a room's walls filled most of a 60x80 frame and the objects were a few pixels on its
# bottom edge; looking 30 degrees down over 80 degrees, the floor and what is on it do
CAMERA_PITCH_DEG = -30.0
CAMERA_FOV_Y_DEG = 80.0
MAX_FRAME_SIDE = 256  # a client's frame size: 1 to this many pixels a side

logger = logging.getLogger(__name__)


def _frame_buffer_note(*args: Any) -> None:
    logger.debug(" ".join(str(a) for a in args))


# MiniWorld prints "Falling back to num_samples=4" for each frame buffer; a server's first
# line must be its address, so it goes to this module's debug log instead.
miniworld_opengl.print = _frame_buffer_note


@dataclass(frozen=True)
class Level:
    """A level of difficulty.

    Attributes:
        rooms: 1, or 2 side by side joined by an opening.
        room_size: each room's side, in metres.
        objects: objects on the floor, no two of the same shape and colour.
        max_steps: the step limit (a time-out).
        confusable: the other objects share the named one's colour or shape (one of
            each where there are at least 3), so both words matter.
    """

    rooms: int
    room_size: float
    objects: int
    max_steps: int
    confusable: bool = False


LEVELS: dict[int, Level] = {
    1: Level(rooms=1, room_size=5.0, objects=2, max_steps=50),
    2: Level(rooms=1, room_size=6.0, objects=3, max_steps=80),
    3: Level(rooms=1, room_size=7.0, objects=4, max_steps=100, confusable=True),
    4: Level(rooms=2, room_size=6.0, objects=4, max_steps=150, confusable=True),
}


def _movement_params() -> Any:
    params = DEFAULT_PARAMS.no_random()
    params.set("forward_step", FORWARD_STEP_M)
    params.set("forward_drift", 0.0)
    params.set("turn_step", TURN_STEP_DEG)
    params.set("cam_pitch", CAMERA_PITCH_DEG)
    params.set("cam_fov_y", CAMERA_FOV_Y_DEG)
    return params


def _make_object(shape: str, colour: str) -> Entity:
    if shape == "ball":
        return Ball(color=colour, size=0.6)
    if shape == "box":
        return Box(color=colour, size=0.6)
    return Key(color=colour)


class GoToObjectWorld(MiniWorldEnv):
    """The MiniWorld env itself (a ``gymnasium.Env``): rooms, objects, the instruction.

    ``reset`` builds a new layout from its random generator; ``info["instruction"]`` and
    the attribute ``instruction`` give the words; a step that touches an object (MiniWorld's
    ``near``) terminates with ``info["is_success"]`` telling whether it was the named one.
    """

    def __init__(self, level: Level, obs_height: int = 60, obs_width: int = 80) -> None:
        self.level = level
        self.objects: list[Entity] = []
        self.kinds: list[tuple[str, str]] = []  # each object's (shape, colour)
        self.main_rooms: list[Any] = []
        self.target: Entity | None = None
        self.instruction = ""
        super().__init__(
            max_episode_steps=level.max_steps,
            obs_width=obs_width,
            obs_height=obs_height,
            params=_movement_params(),
            domain_rand=False,
        )
        self.action_space = spaces.Discrete(NUM_ACTIONS)

    def _gen_world(self) -> None:
        level, size = self.level, self.level.room_size
        self.max_forward_step = self.params.get_max("forward_step")  # (near() needs it now)
        rooms = [self.add_rect_room(min_x=0, max_x=size, min_z=0, max_z=size)]
        if level.rooms == 2:
            gap = 0.4
            rooms.append(
                self.add_rect_room(min_x=size + gap, max_x=2 * size + gap, min_z=0, max_z=size)
            )
            self.connect_rooms(rooms[0], rooms[1], min_z=size / 2 - 1, max_z=size / 2 + 1)
        self.main_rooms = rooms  # (an opening between two rooms is a room of its own)
        kinds = self._object_kinds()
        self.kinds = kinds
        self.objects = [
            self.place_entity(_make_object(*kind), room=rooms[self.np_random.integers(len(rooms))])
            for kind in kinds
        ]
        self.target = self.objects[0]
        shape, colour = kinds[0]
        self.instruction = f"go to the {colour} {shape}"
        self._place_agent_apart()

    def _place_agent_apart(self, tries: int = 1000) -> None:
        """The agent somewhere no object is near (a game never ends on its first step)."""
        for _ in range(tries):
            self.place_agent()
            if not any(self.near(entity) for entity in self.objects):
                return
            self.entities.remove(self.agent)
        raise RuntimeError(f"no place for the agent away from {len(self.objects)} objects")

    def _object_kinds(self) -> list[tuple[str, str]]:
        """Distinct (shape, colour) pairs, the named one first."""
        rng = self.np_random
        target = (SHAPES[rng.integers(len(SHAPES))], COLOURS[rng.integers(len(COLOURS))])
        kinds = [target]
        if self.level.confusable and self.level.objects >= 2:
            same_colour = [(s, target[1]) for s in SHAPES if s != target[0]]
            same_shape = [(target[0], c) for c in COLOURS if c != target[1]]
            kinds.append(same_colour[rng.integers(len(same_colour))])
            if self.level.objects >= 3:
                kinds.append(same_shape[rng.integers(len(same_shape))])
        others = [(s, c) for s in SHAPES for c in COLOURS if (s, c) not in kinds]
        while len(kinds) < self.level.objects:
            kinds.append(others.pop(int(rng.integers(len(others)))))
        return kinds

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        for entity in self.objects:
            if self.near(entity):
                success = entity is self.target
                reward = 1.0 - 0.9 * self.step_count / self.max_episode_steps if success else 0.0
                info["is_success"] = success
                return obs, float(reward), True, False, info
        return obs, float(reward), terminated, truncated, info


class MiniWorldEnv3D(GymEnv):
    """A level of ``GoToObjectWorld`` behind FLARE's ``Env``: first-person frames and the
    instruction in, three moves out.

    Observations: ``image`` uint8 [3, height, width], the agent's RGB view channels first;
    ``instruction`` int64 [5], "go to the COLOUR SHAPE" as token ids of the shared
    vocabulary (spec kind ``Language(len(VOCABULARY))``).

    Action ``action``: 0 turn left, 1 turn right (30 degrees), 2 move forward (0.5 m).

    Reward ``reward``: ``1 - 0.9 * steps / max_steps`` for touching the named object (a
    success, ``game_over`` 1); touching another object is a failure (-1, reward 0); the
    level's step limit is a time-out, never a game over.

    Args:
        level: 1 to 4, see ``LEVELS``: one room with 2 objects; 3 objects in a larger
            room; 4 objects that share the named one's colour or shape; two rooms.
        seed: seeds the first reset; later resets continue the same random stream.
        height, width: the frame's size.
    """

    def __init__(
        self, level: int = 1, seed: int | None = None, height: int = 60, width: int = 80
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
        self.level = level
        self._image_shape = (3, int(height), int(width))
        _on_gl_thread(super().__init__, f"flare-miniworld-level-{level}", seed)

    def _make(self, game_name: str, **make_kwargs: Any) -> Any:
        _, height, width = self._image_shape
        return GoToObjectWorld(LEVELS[self.level], obs_height=height, obs_width=width)

    def _world(self) -> GoToObjectWorld:
        world = self._env
        assert isinstance(world, GoToObjectWorld)
        return world

    @property
    def instruction(self) -> str:
        return self._world().instruction

    @property
    def max_steps(self) -> int:
        return LEVELS[self.level].max_steps

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {IMAGE: self._image_shape, INSTRUCTION: (INSTRUCTION_LENGTH,)}

    def spec(self) -> EnvSpec:
        return EnvSpec(
            observations=(
                ArraySpec(IMAGE, np.dtype(np.uint8), self._image_shape),
                ArraySpec(
                    INSTRUCTION,
                    np.dtype(np.int64),
                    (INSTRUCTION_LENGTH,),
                    Language(len(VOCABULARY)),
                ),
            ),
            actions=(ArraySpec(ACTION, np.dtype(np.int64), (1,), Discrete(NUM_ACTIONS)),),
            reward_names=(REWARD,),
            max_episode_steps=self.max_steps,
        )

    def _observations(self, obs: np.ndarray) -> ObservationDict:
        return {
            IMAGE: np.ascontiguousarray(obs.transpose(2, 0, 1)),
            INSTRUCTION: tokenize(self.instruction, INSTRUCTION_LENGTH),
        }

    def reset(self) -> ObservationDict:
        return _on_gl_thread(super().reset)

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        return _on_gl_thread(super().step, actions, actrep)

    def close(self) -> None:
        _on_gl_thread(super().close)


# ----- the `miniworld` adapter of `flare serve` ----------------------------------------------
@dataclass(frozen=True)
class MiniWorldEnvFactory:
    """Builds ``MiniWorldEnv3D`` sessions; a client's config strings (``level``,
    ``height``, ``width``) override these defaults, and the session's seed seeds the
    layouts. A client's values are bounded: a level of ``LEVELS``, frames of 1 to
    ``MAX_FRAME_SIDE`` pixels a side (a ``ValueError`` naming the key otherwise)."""

    level: int = 1
    height: int = 60
    width: int = 80

    def __call__(
        self,
        level: str | int | None = None,
        height: str | int | None = None,
        width: str | int | None = None,
        seed: int | None = None,
    ) -> MiniWorldEnv3D:
        return MiniWorldEnv3D(
            config_int("level", self.level if level is None else level, 1, max(LEVELS)),
            seed=seed,
            height=config_int(
                "height", self.height if height is None else height, 1, MAX_FRAME_SIDE
            ),
            width=config_int("width", self.width if width is None else width, 1, MAX_FRAME_SIDE),
        )


def _add_miniworld_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--level",
        type=int,
        default=1,
        choices=sorted(LEVELS),
        help="1: one room, 2 objects; 2: 3 objects; 3: 4 confusable objects; 4: two rooms",
    )
    group.add_argument("--height", type=int, default=60, help="frame height")
    group.add_argument("--width", type=int, default=80, help="frame width")


def _build_miniworld(args: argparse.Namespace) -> ServedEnv:
    factory = MiniWorldEnvFactory(args.level, args.height, args.width)
    factory().close()  # (a bad size, or no GL, fails here and not in the first session)
    return ServedEnv(factory, f"MiniWorld go-to-object level {args.level}")


ADAPTER = Adapter(
    name="miniworld",
    summary="3D rooms: first-person frames and 'go to the red ball' as token ids",
    add_options=_add_miniworld_options,
    build=_build_miniworld,
)
