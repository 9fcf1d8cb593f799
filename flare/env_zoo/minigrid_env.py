"""BabyAI and MiniGrid levels (the ``minigrid`` package) behind FLARE's ``Env`` interface.

The agent sees minigrid's egocentric symbolic view and reads the level's mission as token
ids from a fixed BabyAI vocabulary, which is what a language-grounded navigation model
needs: ``{"image": uint8 [3, 7, 7], "instruction": int64 [instruction_length]}``.

The vocabulary and its tokenizer are ``flare.env_zoo.instructions``' (shared with the 3D
MiniWorld rooms), importable from here too.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from typing import Any

import minigrid  # noqa: F401 - registers the MiniGrid-* and BabyAI-* ids
import numpy as np
from gymnasium import spaces
from minigrid.envs.babyai.core import roomgrid_level
from minigrid.envs.babyai.core.levelgen import LevelGen
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.envs.babyai.core.verifier import GoToInstr

from flare.bridge.quoting import quoted
from flare.env_zoo.gym_env import GymEnv
from flare.env_zoo.instructions import (  # noqa: F401 - importable from here, as before
    DEFAULT_INSTRUCTION_LENGTH,
    PAD,
    VOCABULARY,
    WORD_IDS,
    detokenize,
    tokenize,
)
from flare.env_zoo.registry import Adapter, ServedEnv, config_flag, config_int, registered_id
from flare.framework.env import ALIVE, FAILURE, SUCCESS, Env, ObservationDict
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec, Language

IMAGE = "image"
INSTRUCTION = "instruction"
ACTION = "action"
REWARD = "reward"

# minigrid's actions are left, right, forward, pickup, drop, toggle, done (0 .. 6); the
# navigation set is the first three, with the same ids.
ALL_ACTIONS = 7
NAVIGATION_ACTIONS = 3
# Levels that a navigating agent can solve: one room, or rooms joined by open doors, and
# success as soon as the agent faces a described object (no pickup, toggle or done).
_NAVIGATION_LEVELS = re.compile(
    r"^BabyAI-(GoToRedBall|GoToRedBlueBall|GoToObj-|GoToObjS\d|GoToLocal|GoToOpen"
    r"|GoToObjMazeOpen)"
)

logger = logging.getLogger(__name__)


class MiniGridEnv(GymEnv):
    """A MiniGrid or BabyAI level: an egocentric symbolic image and an instruction.

    A ``GymEnv`` (stepping, action repeat, seeding, time-outs and action checks are its)
    with its own observations, spec and game-over rule.

    Observations:
        ``image``: uint8 ``[3, V, V]`` (V = the agent's view size, 7 by default), minigrid's
        egocentric encoding moved to channels first, rows ahead of the agent first: channel
        0 is the object type (``minigrid.core.constants.OBJECT_TO_IDX``: 0 unseen, 1 empty,
        2 wall, ..., 5 key, 6 ball, 7 box, ...), 1 its colour (``COLOR_TO_IDX``, 0..5), 2
        its state (doors: 0 open, 1 closed, 2 locked). The agent stands at the bottom row's
        centre, facing up (row 0). Values are indices, not intensities: a model embeds them
        or scales them by their small ranges, never by 255.
        ``instruction``: int64 ``[instruction_length]``, the mission's token ids (see the
        module's ``VOCABULARY``), padded with 0; spec kind ``Language(len(VOCABULARY))``.

    Actions: one discrete ``action``. ``actions="navigation"`` gives minigrid's three moves
    (0 turn left, 1 turn right, 2 forward), ``"all"`` its seven (adding 3 pick up, 4 drop,
    5 toggle, 6 done). ``"auto"`` (default) is navigation for the levels that need nothing
    else (GoToLocal*, GoToObj, GoToObjS4/S6, GoToRedBall*, GoToRedBlueBall, GoToOpen,
    GoToObjMazeOpen: success as soon as the agent faces the named object) and all seven
    otherwise. The four useless actions of a GoTo level only waste exploration (pick up,
    drop and toggle change nothing the reward sees, done does nothing): with three actions
    a random walk reaches the objects far more often and policies learn much faster.
    (With ``BABYAI_DONE_ACTIONS`` set, minigrid asks for ``done`` on success; use "all".)

    Reward ``reward``: minigrid's, ``1 - 0.9 * steps / max_steps`` on success, else 0.
    Termination with a positive reward is a success (``game_over`` 1); termination without
    one is a failure (-1; e.g. a BabyAI Pickup of the wrong object, MiniGrid's lava). The
    level's step limit (minigrid's ``max_steps``; the spec's ``max_episode_steps``, 0 for
    the generated BabyAI levels whose limit changes with each instruction) is a time-out,
    reported by ``time_out()``, never a game over.

    Args:
        level: a registered id, e.g. ``"BabyAI-GoToLocalS6N2-v0"``.
        seed: seeds the first reset; later resets continue the same random stream.
        actions: ``"auto"``, ``"navigation"`` or ``"all"`` (see above).
        instruction_length: tokens of ``instruction`` (a longer mission is an error).
        wrong_object_ends: on a GoTo level, facing an object the instruction does not name
            ends the game as a failure (reward 0, ``game_over`` -1), as in XWorld and the
            bundled grid world. BabyAI's own rule lets the agent face wrong objects freely,
            so an agent that ignores the words and visits every object still succeeds in
            a small room; with this rule it succeeds only by going to the named one.
        **make_kwargs: passed to ``gymnasium.make`` (e.g. ``agent_view_size=5``).
    """

    def __init__(
        self,
        level: str,
        seed: int | None = None,
        actions: str = "auto",
        instruction_length: int = DEFAULT_INSTRUCTION_LENGTH,
        wrong_object_ends: bool = False,
        **make_kwargs: Any,
    ) -> None:
        if actions not in ("auto", "navigation", "all"):
            raise ValueError(f"actions must be auto, navigation or all, got {quoted(actions)}")
        if instruction_length < 1:
            raise ValueError(f"instruction_length must be >= 1, got {instruction_length}")
        self.level = level
        self.instruction_length = int(instruction_length)
        self.wrong_object_ends = bool(wrong_object_ends)
        if actions == "auto":
            actions = "navigation" if _NAVIGATION_LEVELS.match(level) else "all"
        self.actions = actions
        self.num_actions = NAVIGATION_ACTIONS if actions == "navigation" else ALL_ACTIONS
        super().__init__(level, seed, **make_kwargs)
        # actions are checked against the moves offered, not minigrid's seven
        self._action_space = spaces.Discrete(self.num_actions)
        space = self._env.observation_space
        assert isinstance(space, spaces.Dict)  # (see _check_spaces)
        image_shape = space[IMAGE].shape
        assert image_shape is not None
        width, height, channels = image_shape
        self._image_shape = (channels, height, width)
        self.max_steps = self._episode_limit()
        if self.wrong_object_ends and not self._is_go_to():
            self._env.close()
            raise ValueError(
                f"{level}: wrong_object_ends needs a GoTo level (its instruction names the "
                "objects to go to)"
            )
        self._instruction = np.zeros(self.instruction_length, dtype=np.int64)
        self.mission = ""

    def _check_spaces(self) -> None:
        space = self._env.observation_space
        image = space.get(IMAGE) if isinstance(space, spaces.Dict) else None
        if (
            not isinstance(space, spaces.Dict)
            or image is None
            or "mission" not in space.spaces
            or len(image.shape or ()) != 3
        ):
            self._env.close()
            raise ValueError(
                f"{self.level}: not a MiniGrid level (observation space {space} has no "
                "'image' [V, V, 3] and 'mission')"
            )

    def _episode_limit(self) -> int:
        """The step limit of every episode, or 0 where it differs between episodes.

        A BabyAI level sets its limit at each reset from its instruction (rooms x room
        size^2 per navigation the instruction needs): one reset tells the limit of a level
        whose instructions all have one shape; the generated levels (``LevelGen``: GoToSeq,
        Synth, BossLevel, ...) mix shapes, so their limit varies and none is declared.
        """
        level: Any = self._env.unwrapped  # (a minigrid level: untyped attributes)
        if not isinstance(level, RoomGridLevel) or level.fixed_max_steps:
            return int(level.max_steps)
        if isinstance(level, LevelGen):
            return 0
        self._env.reset(seed=self._seed)  # (the first reset() seeds it again)
        return int(level.max_steps)

    def _is_go_to(self) -> bool:
        level = self._env.unwrapped
        if not isinstance(level, RoomGridLevel):
            return False
        if getattr(level, "instrs", None) is None:  # (a level makes its instruction at reset)
            level.reset(seed=self._seed)
        return isinstance(getattr(level, "instrs", None), GoToInstr)

    def _faces_wrong_object(self) -> bool:
        """Whether the agent faces an object (not a wall, floor or door) that the
        instruction does not name."""
        level: Any = self._env.unwrapped  # (a minigrid level: untyped attributes)
        ahead = level.grid.get(*level.front_pos)
        if ahead is None or ahead.type in ("wall", "floor", "door", "goal", "lava"):
            return False
        return not any(ahead is obj for obj in level.instrs.desc.obj_set)

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {IMAGE: self._image_shape, INSTRUCTION: (self.instruction_length,)}

    def action_dims(self) -> dict[str, int]:
        return {ACTION: self.num_actions}

    def spec(self) -> EnvSpec:
        return EnvSpec(
            observations=(
                ArraySpec(IMAGE, np.dtype(np.uint8), self._image_shape),
                ArraySpec(
                    INSTRUCTION,
                    np.dtype(np.int64),
                    (self.instruction_length,),
                    Language(len(VOCABULARY)),
                ),
            ),
            actions=(ArraySpec(ACTION, np.dtype(np.int64), (1,), Discrete(self.num_actions)),),
            reward_names=(REWARD,),
            max_episode_steps=self.max_steps,
        )

    def _observations(self, obs: dict[str, Any]) -> ObservationDict:
        mission = str(obs["mission"])
        if mission != self.mission:  # a new episode's instruction, tokenized once
            self._instruction = tokenize(mission, self.instruction_length)
            self.mission = mission
        # minigrid's image is indexed [x, y, channel]; rows (y) first, channels first
        image = np.ascontiguousarray(obs[IMAGE].transpose(2, 1, 0))
        return {IMAGE: image, INSTRUCTION: self._instruction.copy()}

    def _game_over_of(self, reward: float, terminated: bool, info: dict[str, Any]) -> int:
        """A termination with a reward is a success (also on the last allowed step),
        without one a failure; with ``wrong_object_ends``, so is facing another object
        (BabyAI pays nothing before the named object is reached, so the reward stays 0)."""
        if terminated:
            return SUCCESS if reward > 0 else FAILURE
        if self.wrong_object_ends and self._faces_wrong_object():
            return FAILURE
        return ALIVE


def _rejection_note(*args: Any) -> None:
    logger.debug(" ".join(str(a) for a in args))


# BabyAI's level generator prints every rejected layout ("Sampling rejected: unreachable
# object at (1, 6)") to stdout, which would bury a server's or a training's own lines; they
# go to this module's debug log instead.
roomgrid_level.print = _rejection_note  # type: ignore[attr-defined]  # (shadows a builtin)


# ----- the `minigrid` adapter of `flare serve` -----------------------------------------------
MAX_INSTRUCTION_LENGTH = 128  # tokens of a client's instruction_length (BabyAI's longest: ~30)


@dataclass(frozen=True)
class MiniGridEnvFactory:
    """Builds ``MiniGridEnv`` sessions (BabyAI / MiniGrid levels); the client's config
    strings (``level``, ``actions``, ``instruction_length``, ``wrong_object_ends``) override
    these defaults, key by key, and the session's seed seeds the level.

    A client's config is untrusted, so it is bounded: ``level`` is a MiniGrid or BabyAI
    level of the ``minigrid`` package (registered id, exactly, with its version), this
    factory's ``level`` or one of ``allowed_levels`` (never another ``module:`` id, which
    ``gymnasium.make`` would import); ``instruction_length`` is 1 to
    ``MAX_INSTRUCTION_LENGTH`` (128). A refused value is a ``ValueError`` naming it.
    """

    level: str | None = None
    actions: str = "auto"
    instruction_length: int | None = None
    wrong_object_ends: bool = False
    allowed_levels: frozenset[str] = frozenset()

    def __call__(
        self,
        level: str | None = None,
        actions: str | None = None,
        instruction_length: str | int | None = None,
        wrong_object_ends: str | bool | None = None,
        seed: int | None = None,
    ) -> Env:
        name = level or self.level
        if not name:
            raise ValueError("no level: start the server with --level or send level in the config")
        allowed = {*self.allowed_levels, *([self.level] if self.level else [])}
        registered_id(
            "level",
            name,
            allowed,
            default_option="--level",
            allow_option="--allow-level",
            package="minigrid",
        )
        length = self.instruction_length if instruction_length is None else instruction_length
        return MiniGridEnv(
            name,
            seed=seed,
            actions=actions or self.actions,
            instruction_length=config_int(
                "instruction_length",
                DEFAULT_INSTRUCTION_LENGTH if length is None else length,
                1,
                MAX_INSTRUCTION_LENGTH,
            ),
            wrong_object_ends=(
                self.wrong_object_ends
                if wrong_object_ends is None
                else config_flag("wrong_object_ends", wrong_object_ends)
            ),
        )


def _add_minigrid_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--level",
        required=True,
        help="a BabyAI level id, e.g. BabyAI-GoToLocalS6N2-v0 (a MiniGrid level works when "
        "its missions use only BabyAI's words; the server checks one at start); clients may "
        "also name any level of the minigrid package",
    )
    group.add_argument(
        "--allow-level",
        action="append",
        metavar="ID",
        help="also let clients ask for this level, e.g. MODULE:ID of another package's "
        "levels (MODULE is imported when one does; no other MODULE:ID is); repeatable",
    )
    group.add_argument(
        "--actions",
        choices=["auto", "navigation", "all"],
        default="auto",
        help="the 3 moves (navigation), all 7 actions, or auto (moves for GoTo levels)",
    )
    group.add_argument(
        "--instruction-length",
        type=int,
        default=DEFAULT_INSTRUCTION_LENGTH,
        help=f"tokens per instruction, 1 to {MAX_INSTRUCTION_LENGTH}",
    )
    group.add_argument(
        "--wrong-object-ends",
        action="store_true",
        help="GoTo levels: facing an object the instruction does not name fails",
    )


def _build_minigrid(args: argparse.Namespace) -> ServedEnv:
    factory = MiniGridEnvFactory(
        args.level,
        args.actions,
        args.instruction_length,
        args.wrong_object_ends,
        frozenset(getattr(args, "allow_level", None) or ()),
    )
    try:  # build and reset one env now: a bad level or mission fails here, not later
        env = factory()
        env.reset()
        env.close()
    except Exception as err:  # noqa: BLE001 - gymnasium and minigrid raise their own
        raise ValueError(f"cannot serve {args.level!r}: {err}") from None
    return ServedEnv(factory, f"MiniGrid {args.level}, {env.action_dims()['action']} actions")


ADAPTER = Adapter(
    name="minigrid",
    summary="a BabyAI / MiniGrid level with its instruction as token ids (MiniGridEnv)",
    add_options=_add_minigrid_options,
    build=_build_minigrid,
)
