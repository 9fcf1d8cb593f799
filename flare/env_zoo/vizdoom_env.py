"""ViZDoom scenarios (the ``vizdoom`` package: a C++ Doom engine, its scenarios and the
Freedoom WADs in its wheel) behind FLARE's ``Env``, and the ``vizdoom`` adapter of
``flare serve``.

The engine renders with no X server and no GL, so a server runs headless as it is. Each
env's engine is a child process of its own (ViZDoom's design), started in a working
directory of its own: the engine writes ``_vizdoom/`` and ``_vizdoom.ini`` where it
runs, and sessions must not share (or litter the server's directory with) them. An
engine that dies costs its episode: the step raises, and the next ``reset()`` starts a
new engine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import weakref
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import vizdoom as vzd

from flare.bridge.quoting import quoted
from flare.env_zoo.registry import Adapter, ServedEnv, config_flag, config_int
from flare.framework.env import (
    ALIVE,
    FAILURE,
    SUCCESS,
    ActionDict,
    Env,
    EnvInterrupted,
    ObservationDict,
    RewardDict,
)
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec

SCREEN = "screen"
DEPTH = "depth"
LABELS = "labels"
GAME_VARIABLES = "game_variables"
ACTION = "action"
REWARD = "reward"

# The single-player scenarios of ViZDoom's wheel a client may name (their .cfg files lie in
# ``vizdoom.scenarios_path``); any other .cfg only when the server was started with it.
BUNDLED_SCENARIOS: tuple[str, ...] = (
    "basic",
    "simpler_basic",
    "rocket_basic",
    "defend_the_center",
    "defend_the_line",
    "health_gathering",
    "health_gathering_supreme",
    "my_way_home",
    "deadly_corridor",
    "predict_position",
    "take_cover",
)

# Bounds of what a client's session config may ask for: no config makes the server render
# a giant frame or stack, or hold an engine step for long.
MAX_FRAME_SIDE = 640
MAX_CONTEXTS = 16
MAX_FRAME_SKIP = 64
MAX_BUTTONS_PRESSED = 3
MAX_IMAGE_VALUES = 4 * 1024 * 1024  # channels x height x width of the stacked screen

# The engine's launcher (see ViZDoomEnv._engine_launcher): a Python script, since the
# working directory and the parent-death signal are set between fork and exec.
LAUNCHER = """#!{python} -IS
import ctypes, os, signal, sys
os.chdir({workdir})
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):  # (not Linux: the engine outlives a killed parent)
    pass
if os.getppid() != {parent}:  # the parent died before the signal was asked for
    sys.exit(1)
os.execv({engine}, [{engine}, *sys.argv[1:]])
"""

# what a DoomGame raises when its engine process is gone (ViZDoomErrorException: "Unexpected
# ViZDoom instance crash", when the engine was killed)
_ENGINE_GONE = (
    vzd.ViZDoomUnexpectedExitException,
    vzd.ViZDoomIsNotRunningException,
    vzd.ViZDoomErrorException,
)

_RESOLUTION = re.compile(r"^RES_(\d+)X(\d+)$")
# the engine's screen sizes, smallest first: a frame is rendered at the smallest one that
# covers it, then resized
_ENGINE_RESOLUTIONS: tuple[tuple[int, int, Any], ...] = tuple(
    sorted(
        (int(m[1]), int(m[2]), getattr(vzd.ScreenResolution, name))
        for name in dir(vzd.ScreenResolution)
        if (m := _RESOLUTION.match(name))
    )
)


def scenario_config(scenario: str) -> Path:
    """The .cfg file of a bundled scenario's name, or of a path to a .cfg file."""
    if scenario in BUNDLED_SCENARIOS:
        return Path(vzd.scenarios_path) / f"{scenario}.cfg"
    path = Path(scenario)
    if path.suffix != ".cfg":
        raise ValueError(
            f"scenario {quoted(scenario)} is neither a bundled scenario "
            f"({', '.join(BUNDLED_SCENARIOS)}) nor a path to a .cfg file"
        )
    if not path.is_file():
        raise ValueError(f"scenario {quoted(scenario)}: no such file")
    return path.resolve()


def engine_resolution(width: int, height: int) -> tuple[int, int, Any]:
    """The smallest engine screen (width, height, ViZDoom's enum) that covers a frame."""
    for engine_width, engine_height, resolution in _ENGINE_RESOLUTIONS:
        if engine_width >= width and engine_height >= height:
            return engine_width, engine_height, resolution
    return _ENGINE_RESOLUTIONS[-1]


@dataclass(frozen=True)
class ViZDoomSettings:
    """What an agent sees of a scenario and how it acts in it.

    Attributes:
        scenario: a bundled scenario's name (``BUNDLED_SCENARIOS``) or a .cfg path.
        frame_skip: engine tics per step (the action held, rewards summed).
        height, width: the frames' size (rendered at the smallest engine resolution
            that covers it, then resized with area averaging).
        gray: one gray channel instead of RGB.
        contexts: frames stacked, newest last (channels = contexts x 1 or 3).
        depth: also the depth buffer, ``depth`` uint8 [contexts, height, width].
        labels: also the labels buffer (each visible object's label value per pixel, 0
            for none), ``labels`` uint8 [contexts, height, width].
        game_variables: also the scenario's game variables (e.g. AMMO2, HEALTH), in
            its order, ``game_variables`` float32 [n].
        buttons_pressed: 1 (default): action i presses the scenario's button i alone;
            k > 1: the actions are every set of 1 to k buttons, singletons first (so
            action i < buttons is still button i alone), then pairs, ...
    """

    scenario: str = "basic"
    frame_skip: int = 4
    height: int = 60
    width: int = 80
    gray: bool = False
    contexts: int = 1
    depth: bool = False
    labels: bool = False
    game_variables: bool = False
    buttons_pressed: int = 1

    def __post_init__(self) -> None:
        config_int("frame_skip", self.frame_skip, 1, MAX_FRAME_SKIP)
        config_int("height", self.height, 1, MAX_FRAME_SIDE)
        config_int("width", self.width, 1, MAX_FRAME_SIDE)
        config_int("contexts", self.contexts, 1, MAX_CONTEXTS)
        config_int("buttons_pressed", self.buttons_pressed, 1, MAX_BUTTONS_PRESSED)
        values = self.channels * self.height * self.width
        if values > MAX_IMAGE_VALUES:
            raise ValueError(
                f"contexts x channels x height x width must be at most {MAX_IMAGE_VALUES}, "
                f"got {values}"
            )

    @property
    def channels(self) -> int:
        return self.contexts * (1 if self.gray else 3)


def button_combinations(buttons: int, pressed: int) -> list[tuple[int, ...]]:
    """The buttons each discrete action presses: every set of 1 to ``pressed`` of them,
    singletons first (``button_combinations(3, 2)``: (0,) (1,) (2,) (0,1) (0,2) (1,2))."""
    return [
        combination
        for size in range(1, min(pressed, buttons) + 1)
        for combination in itertools.combinations(range(buttons), size)
    ]


class ViZDoomEnv(Env):
    """A ViZDoom scenario: first-person frames in, the scenario's buttons out.

    Observations (uint8 frames channels first, ``settings.contexts`` stacked, newest
    last): ``screen`` [contexts x (1 or 3), height, width]; with ``settings.depth`` and
    ``settings.labels`` also ``depth`` and ``labels`` [contexts, height, width]; with
    ``settings.game_variables`` also ``game_variables`` float32 [n].

    Action: one discrete ``action``; see ``ViZDoomSettings.buttons_pressed``. Reward
    ``reward``: the scenario's (its living reward, kills, pick-ups, death penalty ...),
    summed over the step's tics and ``actrep`` repeats.

    Episode ends: the scenario's time-out (``episode_timeout`` tics) is a time-out,
    reported by ``time_out()``, never a game over; the player's death is a failure
    (``game_over`` -1); any other end the scenario's script makes (basic's monster killed,
    my_way_home's vest reached) is a success (1). The step that ends an episode returns
    the last frames the engine showed (it has no screen after the end).

    Seeds: ``seed`` seeds a generator that gives each episode the engine seed it starts
    with, so a seeded env plays the same episodes for the same actions.

    Args:
        settings: the scenario and what the agent sees of it.
        seed: seeds the episodes (None: from the OS).
        sessions_dir: where the engine's own working directory is made (a fresh
            temporary directory inside it, removed by ``close()``); the system's
            temporary directory by default.
    """

    def __init__(
        self,
        settings: ViZDoomSettings | None = None,
        seed: int | None = None,
        sessions_dir: str | None = None,
    ) -> None:
        self.settings = settings = settings or ViZDoomSettings()
        self._config = scenario_config(settings.scenario)
        self._rng = np.random.default_rng(seed)
        self._workdir = Path(tempfile.mkdtemp(prefix="flare-vizdoom-", dir=sessions_dir))
        # removed by close(), or when the env is collected or the process exits unclosed
        self._remove_workdir = weakref.finalize(
            self, shutil.rmtree, self._workdir, ignore_errors=True
        )
        self._game: vzd.DoomGame | None = None
        try:
            self._game = self._start_engine()
        except BaseException:
            self._remove_workdir()
            raise
        game = self._game
        self.buttons: tuple[str, ...] = tuple(b.name for b in game.get_available_buttons())
        delta = [b.name for b in game.get_available_buttons() if vzd.is_delta_button(b)]
        if delta or not self.buttons:
            self.close()
            raise ValueError(
                f"scenario {quoted(settings.scenario)}: "
                + (f"delta buttons {delta} are not supported" if delta else "it has no buttons")
            )
        self.combinations = button_combinations(len(self.buttons), settings.buttons_pressed)
        self._button_vectors = [
            [1.0 if i in combination else 0.0 for i in range(len(self.buttons))]
            for combination in self.combinations
        ]
        self.game_variable_names: tuple[str, ...] = tuple(
            v.name for v in game.get_available_game_variables()
        )
        if settings.game_variables and not self.game_variable_names:
            self.close()
            raise ValueError(f"scenario {quoted(settings.scenario)} declares no game variables")
        timeout = game.get_episode_timeout()
        self.max_steps = math.ceil(timeout / settings.frame_skip) if timeout > 0 else 0
        self._frames: dict[str, deque[np.ndarray]] = {}
        self._last: dict[str, np.ndarray] = {}
        self._variables = np.zeros(len(self.game_variable_names), np.float32)
        self._running = False
        self._timed_out = False
        self._engine_failed = False

    # ----- the engine ---------------------------------------------------------------------
    def _start_engine(self) -> vzd.DoomGame:
        settings = self.settings
        game = vzd.DoomGame()
        if not game.load_config(str(self._config)):
            raise ValueError(f"scenario {quoted(settings.scenario)}: ViZDoom could not load it")
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_format(vzd.ScreenFormat.GRAY8 if settings.gray else vzd.ScreenFormat.RGB24)
        game.set_screen_resolution(engine_resolution(settings.width, settings.height)[2])
        game.set_depth_buffer_enabled(settings.depth)
        game.set_labels_buffer_enabled(settings.labels)
        game.set_doom_config_path(str(self._workdir / "_vizdoom.ini"))
        game.set_vizdoom_path(str(self._engine_launcher()))
        game.init()
        return game

    def _engine_launcher(self) -> Path:
        """A launcher that starts ViZDoom's engine in this env's working directory, to end
        with the thread that starts it.

        The engine is a child process that writes its files into the directory it runs
        in; ViZDoom offers no setting for it, and changing the server's own directory
        would change it for every thread. Nor does the engine notice its controller's
        death: an env worker killed by a crash would leave its engines running for good.
        The launcher (this interpreter, no site packages) changes only the engine's
        directory, asks Linux to kill it when its parent thread ends (PR_SET_PDEATHSIG),
        and becomes the engine."""
        engine = Path(vzd.__file__).resolve().parent / "vizdoom"
        launcher = self._workdir / "engine"
        launcher.write_text(
            LAUNCHER.format(
                python=sys.executable,
                workdir=repr(str(self._workdir)),
                engine=repr(str(engine)),
                parent=os.getpid(),
            )
        )
        launcher.chmod(stat.S_IRWXU)
        return launcher

    @property
    def game(self) -> vzd.DoomGame:
        """ViZDoom's own game, for what the observations leave out (a scripted player, a
        tool reading the labels' objects); stepping it directly desynchronises the env."""
        return self._engine()

    def _engine(self) -> vzd.DoomGame:
        if self._game is None:
            raise RuntimeError("the env was closed")
        return self._game

    def _restart_engine(self) -> None:
        old, self._game = self._game, None
        if old is not None:
            try:
                old.close()
            except Exception:  # noqa: BLE001 - it is dead already
                pass
        self._game = self._start_engine()
        self._engine_failed = False

    # ----- observations -------------------------------------------------------------------
    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {spec.name: spec.shape for spec in self._observation_specs()}

    def action_dims(self) -> dict[str, int]:
        return {ACTION: len(self.combinations)}

    def _observation_specs(self) -> list[ArraySpec]:
        s = self.settings
        specs = [ArraySpec(SCREEN, np.dtype(np.uint8), (s.channels, s.height, s.width))]
        for name, wanted in ((DEPTH, s.depth), (LABELS, s.labels)):
            if wanted:
                specs.append(ArraySpec(name, np.dtype(np.uint8), (s.contexts, s.height, s.width)))
        if s.game_variables:
            specs.append(
                ArraySpec(GAME_VARIABLES, np.dtype(np.float32), (len(self.game_variable_names),))
            )
        return specs

    def spec(self) -> EnvSpec:
        return EnvSpec(
            observations=tuple(self._observation_specs()),
            actions=(
                ArraySpec(ACTION, np.dtype(np.int64), (1,), Discrete(len(self.combinations))),
            ),
            reward_names=(REWARD,),
            max_episode_steps=self.max_steps,
        )

    def _buffers(self, state: Any) -> dict[str, np.ndarray]:
        """This tic's frames, channels first, at the settings' size."""
        s = self.settings
        size = (s.width, s.height)
        screen = state.screen_buffer  # [H, W] gray or [H, W, 3] RGB
        if screen.shape[:2] != (s.height, s.width):
            screen = cv2.resize(screen, size, interpolation=cv2.INTER_AREA)
        buffers = {SCREEN: screen[None] if s.gray else screen.transpose(2, 0, 1)}
        # depth and labels are resized to the nearest pixel: a label value must stay one
        for name, buffer, wanted in (
            (DEPTH, state.depth_buffer, s.depth),
            (LABELS, state.labels_buffer, s.labels),
        ):
            if wanted:
                if buffer.shape != (s.height, s.width):
                    buffer = cv2.resize(buffer, size, interpolation=cv2.INTER_NEAREST)
                buffers[name] = buffer[None]
        return buffers

    def _observe(self, new_episode: bool) -> ObservationDict:
        state = self._engine().get_state()
        if state is not None:
            buffers = self._buffers(state)
            if self.settings.game_variables and state.game_variables is not None:
                self._variables = np.asarray(state.game_variables, np.float32)
            for name, frame in buffers.items():
                if new_episode:
                    self._frames[name] = deque(
                        [frame] * self.settings.contexts, maxlen=self.settings.contexts
                    )
                else:
                    self._frames[name].append(frame)
            self._last = {
                name: np.ascontiguousarray(np.concatenate(frames, axis=0))
                for name, frames in self._frames.items()
            }
        observations = {name: array.copy() for name, array in self._last.items()}
        if self.settings.game_variables:
            observations[GAME_VARIABLES] = self._variables.copy()
        return observations

    # ----- episodes -----------------------------------------------------------------------
    def reset(self) -> ObservationDict:
        episode_seed = int(self._rng.integers(0, 2**32))
        if self._engine_failed or not self._engine().is_running():  # (it died)
            self._restart_engine()
        try:
            self._new_episode(episode_seed)
        except _ENGINE_GONE:  # it died since: one more engine, once
            self._restart_engine()
            self._new_episode(episode_seed)
        self._running = True
        self._timed_out = False
        return self._observe(new_episode=True)

    def _new_episode(self, episode_seed: int) -> None:
        game = self._engine()
        game.set_seed(episode_seed)
        game.new_episode()

    def reseed(self, seed: int) -> bool:
        self._rng = np.random.default_rng(seed)
        return True

    def episode_start(self) -> dict[str, Any] | None:
        return {"rng": dict(self._rng.bit_generator.state)}

    def reset_from(self, start: dict[str, Any]) -> ObservationDict:
        self._rng.bit_generator.state = start["rng"]
        return self.reset()

    def _buttons_of(self, actions: ActionDict) -> list[float]:
        try:
            action = actions[ACTION]
        except KeyError:
            raise KeyError(f"no {ACTION!r} in actions {sorted(actions)}") from None
        array = np.asarray(action)
        if array.size != 1:
            raise ValueError(f"a discrete action has one value, got {action}")
        value = int(array.item())
        if not 0 <= value < len(self.combinations):
            raise ValueError(f"action {value} is outside 0..{len(self.combinations) - 1}")
        return self._button_vectors[value]

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        if not self._running:
            raise RuntimeError("step() before reset() or after the episode ended; call reset()")
        if actrep < 1:
            raise ValueError(f"actrep must be >= 1, got {actrep}")
        buttons = self._buttons_of(actions)
        game = self._engine()
        total = 0.0
        game_over: int = ALIVE
        try:
            for _ in range(actrep):
                total += game.make_action(buttons, self.settings.frame_skip)
                if game.is_episode_finished():
                    self._running = False
                    if game.is_episode_timeout_reached():
                        self._timed_out = True
                    else:
                        game_over = FAILURE if game.is_player_dead() else SUCCESS
                    break
            observations = self._observe(new_episode=False)
        except _ENGINE_GONE as err:
            self._running = False
            self._engine_failed = True
            raise EnvInterrupted(f"the ViZDoom engine exited: {err}") from err
        return observations, {REWARD: np.array((total,), np.float32)}, game_over

    def time_out(self) -> bool:
        return self._timed_out

    def close(self) -> None:
        game, self._game = self._game, None
        self._running = False
        if game is not None:
            try:
                game.close()
            except Exception:  # noqa: BLE001 - closing must not fail
                pass
        self._remove_workdir()


# ----- the `vizdoom` adapter of `flare serve` ------------------------------------------------
_INT_KEYS = {
    "frame_skip": MAX_FRAME_SKIP,
    "height": MAX_FRAME_SIDE,
    "width": MAX_FRAME_SIDE,
    "contexts": MAX_CONTEXTS,
    "buttons_pressed": MAX_BUTTONS_PRESSED,
}
_FLAG_KEYS = ("gray", "depth", "labels", "game_variables")


@dataclass(frozen=True)
class ViZDoomEnvFactory:
    """Builds ``ViZDoomEnv`` sessions; a client's config strings override ``settings``
    key by key (``scenario``, ``frame_skip``, ``height``, ``width``, ``gray``,
    ``contexts``, ``depth``, ``labels``, ``game_variables``, ``buttons_pressed``) and the
    session's seed seeds its episodes.

    A client's config is untrusted, so it is bounded: ``scenario`` is a bundled scenario
    or the server's own (a client never names a file); numbers lie within
    ``MAX_FRAME_SIDE``, ``MAX_CONTEXTS``, ``MAX_FRAME_SKIP``, ``MAX_BUTTONS_PRESSED`` and
    the stacked screen within ``MAX_IMAGE_VALUES``. A refused value is a ``ValueError``
    naming it (the client gets INVALID_ARGUMENT).
    """

    settings: ViZDoomSettings = ViZDoomSettings()
    sessions_dir: str | None = None

    def __call__(self, seed: int | None = None, **config: str | int | bool) -> Env:
        unknown = sorted(set(config) - {"scenario", *_INT_KEYS, *_FLAG_KEYS})
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        changes: dict[str, Any] = {}
        scenario = config.get("scenario")
        if scenario is not None:
            scenario = str(scenario)
            if scenario not in BUNDLED_SCENARIOS and scenario != self.settings.scenario:
                raise ValueError(
                    f"scenario {quoted(scenario)} is not one of {', '.join(BUNDLED_SCENARIOS)} "
                    "nor the server's own: the server's operator serves it with --scenario"
                )
            changes["scenario"] = scenario
        for key, high in _INT_KEYS.items():
            if key in config:
                changes[key] = config_int(key, config[key], 1, high)
        for key in _FLAG_KEYS:
            if key in config:
                changes[key] = config_flag(key, config[key])  # type: ignore[arg-type]
        return ViZDoomEnv(replace(self.settings, **changes), seed, self.sessions_dir)


def _add_vizdoom_options(group: argparse._ArgumentGroup) -> None:
    defaults = ViZDoomSettings()
    group.add_argument(
        "--scenario",
        default=defaults.scenario,
        help=f"a bundled scenario ({', '.join(BUNDLED_SCENARIOS)}) or a path to a .cfg "
        f"file; clients may also name any bundled one (default: {defaults.scenario})",
    )
    group.add_argument(
        "--frame-skip", type=int, default=defaults.frame_skip, help="engine tics per step"
    )
    group.add_argument("--height", type=int, default=defaults.height, help="frame height")
    group.add_argument("--width", type=int, default=defaults.width, help="frame width")
    group.add_argument("--gray", action="store_true", help="gray frames (default: RGB)")
    group.add_argument(
        "--contexts", type=int, default=defaults.contexts, help="frames stacked, newest last"
    )
    group.add_argument("--depth", action="store_true", help="also the depth buffer")
    group.add_argument("--labels", action="store_true", help="also the labels buffer")
    group.add_argument(
        "--game-variables", action="store_true", help="also the scenario's game variables"
    )
    group.add_argument(
        "--buttons-pressed",
        type=int,
        default=defaults.buttons_pressed,
        help=f"1: one action per button; k (to {MAX_BUTTONS_PRESSED}): every set of 1..k buttons",
    )
    group.add_argument(
        "--sessions-dir",
        help="where each session's engine gets its working directory (default: the "
        "system's temporary directory)",
    )


def _build_vizdoom(args: argparse.Namespace) -> ServedEnv:
    settings = ViZDoomSettings(
        scenario=args.scenario,
        frame_skip=args.frame_skip,
        height=args.height,
        width=args.width,
        gray=args.gray,
        contexts=args.contexts,
        depth=args.depth,
        labels=args.labels,
        game_variables=args.game_variables,
        buttons_pressed=args.buttons_pressed,
    )
    factory = ViZDoomEnvFactory(settings, args.sessions_dir)
    factory().close()  # a bad scenario fails here, not in the first session
    return ServedEnv(factory, f"ViZDoom {settings.scenario}")


ADAPTER = Adapter(
    name="vizdoom",
    summary="a ViZDoom scenario: first-person frames, its buttons as the action",
    add_options=_add_vizdoom_options,
    build=_build_vizdoom,
)
