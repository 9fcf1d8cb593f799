"""Gymnasium environments behind FLARE's ``Env`` interface, and the ``gym`` adapter of
``flare serve`` (a client's session config is bounded there: see ``GymEnvFactory``)."""

from __future__ import annotations

import argparse
import importlib
import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import (
    AddRenderObservation,
    FrameStackObservation,
    GrayscaleObservation,
    ResizeObservation,
)

from flare.env_zoo.atari import AtariSettings, game_id, is_atari, preprocess_atari
from flare.env_zoo.registry import Adapter, ServedEnv, config_flag, config_int, registered_id
from flare.framework.env import (
    ALIVE,
    FAILURE,
    SUCCESS,
    ActionDict,
    Env,
    ObservationDict,
    RewardDict,
)
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec

SENSOR = "sensor"
ACTION = "action"
REWARD = "reward"
# observation bounds are published in the spec up to this many elements (one pair each)
MAX_PUBLISHED_BOUNDS = 4096


class GymEnv(Env):
    """A Gymnasium game with one observation ``sensor`` and one action ``action``.

    Termination is a game over: success when the step's ``info["is_success"]`` is true,
    failure otherwise. Truncation (the game's step limit) is a time-out, never a game over.

    Args:
        game_name: a registered Gymnasium id, e.g. ``"CartPole-v0"``, or an Atari game's
            bare name (``"Breakout"``: ale-py's ``ALE/Breakout-v5``).
        seed: seeds the first reset; later resets continue the same random stream.
        **make_kwargs: passed to ``gymnasium.make``.
    """

    # what the observation is sent and stored as
    SENSOR_DTYPE: np.dtype[Any] = np.dtype(np.float32)

    def __init__(self, game_name: str, seed: int | None = None, **make_kwargs: Any) -> None:
        game_name = game_id(game_name)  # (e.g. Breakout: ALE/Breakout-v5)
        self.game_name = game_name
        self._env = self._make(game_name, **make_kwargs)
        self._seed = seed
        self._timed_out = False
        self._game_over = True
        self._check_spaces()
        self._action_space = self._env.action_space  # (each wrapper would look it up anew)

    def _make(self, game_name: str, **make_kwargs: Any) -> gym.Env:
        return _gym_make(game_name, **make_kwargs)

    def _check_spaces(self) -> None:
        action_space = self._env.action_space
        if not isinstance(action_space, spaces.Discrete | spaces.Box):
            raise ValueError(
                f"{self.game_name}: action space {action_space} is not supported "
                "(Discrete or 1-D Box expected)"
            )
        if isinstance(action_space, spaces.Box) and len(action_space.shape) != 1:
            raise ValueError(
                f"{self.game_name}: a Box action space must be 1-D, got {action_space}"
            )
        if not isinstance(self._env.observation_space, spaces.Box):
            raise ValueError(
                f"{self.game_name}: observation space {self._env.observation_space} is not a Box"
            )

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        shape = self._env.observation_space.shape
        assert shape is not None  # (a Box: see _check_spaces)
        return {SENSOR: tuple(shape)}

    def action_dims(self) -> dict[str, int]:
        space = self._env.action_space
        if isinstance(space, spaces.Discrete):
            return {ACTION: int(space.n)}
        assert isinstance(space, spaces.Box)  # (see _check_spaces)
        return {ACTION: int(space.shape[0])}

    def _observations(self, obs: Any) -> ObservationDict:
        if type(obs) is np.ndarray and obs.dtype == np.float32:
            return {SENSOR: obs}
        return {SENSOR: np.asarray(obs, dtype=np.float32)}

    def spec(self) -> EnvSpec:
        space = self._env.action_space
        if isinstance(space, spaces.Discrete):
            action = ArraySpec(ACTION, np.dtype(np.int64), (1,), Discrete(int(space.n)))
        else:
            assert isinstance(space, spaces.Box)  # (see _check_spaces)
            bounds = Continuous(
                tuple(float(x) for x in space.low.reshape(-1)),
                tuple(float(x) for x in space.high.reshape(-1)),
            )
            action = ArraySpec(ACTION, np.dtype(np.float32), tuple(space.shape), bounds)
        gym_spec = self._env.spec
        limit = gym_spec.max_episode_steps if gym_spec is not None else None
        return EnvSpec(
            observations=(
                ArraySpec(
                    SENSOR,
                    self.SENSOR_DTYPE,
                    self.observation_dims()[SENSOR],
                    self._sensor_bounds(),
                ),
            ),
            actions=(action,),
            reward_names=(REWARD,),
            max_episode_steps=int(limit or 0),
        )

    def _sensor_bounds(self) -> Continuous | None:
        """The Box's bounds, published so that a client (e.g. ``flare.gymnasium``) can
        rebuild the very observation space."""
        space = self._env.observation_space
        assert isinstance(space, spaces.Box)  # (see _check_spaces)
        if space.low.size > MAX_PUBLISHED_BOUNDS:
            return None  # (a bound per element: too big a spec for every session)
        return Continuous(
            tuple(float(x) for x in np.asarray(space.low, np.float64).reshape(-1)),
            tuple(float(x) for x in np.asarray(space.high, np.float64).reshape(-1)),
        )

    def reset(self) -> ObservationDict:
        obs, _ = self._env.reset(seed=self._seed)
        self._seed = None
        self._timed_out = False
        self._game_over = False
        return self._observations(obs)

    def reseed(self, seed: int) -> bool:
        self._seed = seed  # (the next reset seeds the game, as the first one does)
        return True

    def episode_start(self) -> dict[str, Any] | None:
        if self._seed is not None:  # the first reset seeds the game
            return {"seed": self._seed}
        return {"np_random": dict(self._env.unwrapped.np_random.bit_generator.state)}

    def reset_from(self, start: dict[str, Any]) -> ObservationDict:
        if "seed" in start:
            self._seed = int(start["seed"])
        else:
            self._env.unwrapped.np_random.bit_generator.state = start["np_random"]
            self._seed = None
        return self.reset()

    def _gym_action(self, actions: ActionDict) -> Any:
        try:
            action = actions[ACTION]
        except KeyError:
            raise KeyError(
                f"{self.game_name}: no {ACTION!r} in actions {sorted(actions)}"
            ) from None
        space = self._action_space
        if isinstance(space, spaces.Discrete):  # FLARE counts 0..n-1; Gym from space.start
            array = action if type(action) is np.ndarray else np.asarray(action)
            if array.size != 1:
                raise ValueError(f"{self.game_name}: a discrete action has one value, got {action}")
            value = int(array.item())
            if not 0 <= value < space.n:
                raise ValueError(f"{self.game_name}: action {value} is outside 0..{space.n - 1}")
            # a numpy scalar of the space's dtype, as Gymnasium's vector envs pass: the
            # game's contains() check takes ~0.6 us less per step than with an int
            return space.dtype.type(space.start + value)
        return np.asarray(action).astype(space.dtype).reshape(space.shape)

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        if self._game_over or self._timed_out:
            raise RuntimeError(f"{self.game_name}: step() after the episode ended; call reset()")
        if actrep < 1:
            raise ValueError(f"actrep must be >= 1, got {actrep}")
        action = self._gym_action(actions)
        total = 0.0
        game_over: int = ALIVE
        for _ in range(actrep):
            obs, reward, terminated, truncated, info = self._env.step(action)
            reward = float(reward)
            total += reward
            game_over = self._game_over_of(reward, terminated, info)
            if game_over != ALIVE:
                self._game_over = True
                break
            if truncated:
                self._timed_out = True
                break
        return self._observations(obs), {REWARD: np.array((total,), np.float32)}, game_over

    def _game_over_of(self, reward: float, terminated: bool, info: dict[str, Any]) -> int:
        """One Gymnasium step's game over: a termination is a success when
        ``info["is_success"]`` says so, else a failure."""
        if not terminated:
            return ALIVE
        return SUCCESS if info.get("is_success") else FAILURE

    def time_out(self) -> bool:
        return self._timed_out

    def close(self) -> None:
        self._env.close()


class GymEnvImage(GymEnv):
    """A Gymnasium game seen as images: resized, optionally gray, ``contexts`` stacked frames.

    The observation ``sensor`` is channels-first uint8 pixels: ``(contexts, height,
    width)`` when gray, ``(contexts * 3, height, width)`` in colour. Frames travel as bytes
    through the agents' buffers, the pipes and the wire (a quarter of float32's); a
    model's CT turns them into floats in [0, 1] once per batch, on the model's device.

    An Atari game (any of ale-py's ids, e.g. ``ALE/Breakout-v5`` or ``Breakout-v0``) is
    played with the standard preprocessing (``flare.env_zoo.atari``: no-op starts, frame
    skip 4 with max-pooling, FIRE on reset; ``atari`` changes it). Any other game whose
    observation is not an image is rendered (``render_mode="rgb_array"``).
    """

    SENSOR_DTYPE: np.dtype[Any] = np.dtype(np.uint8)

    def __init__(
        self,
        game_name: str,
        contexts: int = 4,
        height: int = 84,
        width: int = 84,
        gray: bool = True,
        seed: int | None = None,
        atari: AtariSettings | None = None,
        **make_kwargs: Any,
    ) -> None:
        if contexts < 1 or height < 1 or width < 1:
            raise ValueError(
                f"contexts, height and width must be >= 1, got {contexts}, {height}, {width}"
            )
        self.contexts, self.height, self.width, self.gray = contexts, height, width, gray
        self.atari = atari
        super().__init__(game_name, seed=seed, **make_kwargs)

    def _make(self, game_name: str, **make_kwargs: Any) -> gym.Env:
        if is_atari(game_name):
            env = preprocess_atari(
                _gym_make(game_name, frameskip=1, **make_kwargs),
                self.height,
                self.width,
                self.gray,
                self.atari,
            )
            return FrameStackObservation(env, self.contexts, padding_type="zero")
        if self.atari is not None:
            raise ValueError(f"{game_name} is not an Atari game: it takes no AtariSettings")
        env = _gym_make(game_name, **make_kwargs)
        if not _is_image_space(env.observation_space):
            env.close()
            make_kwargs.setdefault("render_mode", "rgb_array")
            env = AddRenderObservation(_gym_make(game_name, **make_kwargs), render_only=True)
        env = ResizeObservation(env, (self.height, self.width))
        if self.gray:
            env = GrayscaleObservation(env, keep_dim=False)
        return FrameStackObservation(env, self.contexts, padding_type="zero")

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        channels = self.contexts if self.gray else self.contexts * 3
        return {SENSOR: (channels, self.height, self.width)}

    def _sensor_bounds(self) -> Continuous | None:
        return None  # (pixels 0..255, one bound per pixel: not worth a spec's bytes)

    def _observations(self, obs: np.ndarray) -> ObservationDict:
        frames = np.asarray(obs, dtype=np.uint8)
        if not self.gray:  # (contexts, h, w, 3) -> (contexts * 3, h, w)
            frames = frames.transpose(0, 3, 1, 2).reshape(self.observation_dims()[SENSOR])
        return {SENSOR: np.ascontiguousarray(frames)}


def _gym_make(game_name: str, **make_kwargs: Any) -> gym.Env:
    # Old versions such as CartPole-v0 (the seed's game) are asked for on purpose; one
    # "out of date" warning per agent process would only bury the progress lines.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is out of date.*")
        return gym.make(game_name, **make_kwargs)


def _is_image_space(space: gym.Space) -> bool:
    return (
        isinstance(space, spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[-1] in (1, 3)
    )


# ----- the `gym` adapter of `flare serve` ----------------------------------------------------
# Limits of a session's config (a client's, so untrusted): no config makes the server
# allocate more than one bounded frame stack per session, or run an unbounded episode.
MAX_FRAME_SIDE = 1024  # height and width of a GymEnvImage frame, in pixels
MAX_CONTEXTS = 64  # stacked frames
MAX_IMAGE_VALUES = 4 * 1024 * 1024  # contexts x channels x height x width (16 MiB as float32)
MAX_EPISODE_STEPS = 1_000_000  # max_episode_steps of a game that registers no limit


@dataclass(frozen=True)
class GymEnvFactory:
    """Builds ``GymEnv`` (or ``GymEnvImage`` with ``image``) sessions; the client's config
    strings override these defaults, key by key.

    A client's config is untrusted, so it is bounded:

    - ``game_name``: a Gymnasium id registered in the server's registry (exactly, with its
      version), this factory's ``game_name``, or one of ``allowed_games``. An id with a
      ``module:`` part is never taken from a client otherwise: ``gymnasium.make`` would
      import that module in the server.
    - ``height`` and ``width``: 1 to ``MAX_FRAME_SIDE`` (1024); ``contexts``: 1 to
      ``MAX_CONTEXTS`` (64); and the stacked image at most ``MAX_IMAGE_VALUES`` (4 Mi)
      values, contexts x channels (1 gray, 3 colour) x height x width.
    - ``max_episode_steps`` (optional): shortens episodes, 1 to the game's registered
      limit (``MAX_EPISODE_STEPS``, 1,000,000, for a game without one).

    A refused value is a ``ValueError`` naming the key and the limit (the client gets
    INVALID_ARGUMENT).
    """

    game_name: str | None = None
    image: bool = False
    height: int = 84
    width: int = 84
    gray: bool = False
    contexts: int = 4
    allowed_games: frozenset[str] = frozenset()

    def __call__(
        self,
        game_name: str | None = None,
        image: str | bool | None = None,
        height: str | int | None = None,
        width: str | int | None = None,
        gray: str | bool | None = None,
        contexts: str | int | None = None,
        max_episode_steps: str | int | None = None,
        seed: int | None = None,
    ) -> Env:
        game = game_id(game_name or self.game_name or "")
        if not game:
            raise ValueError(
                "no game: start the server with --game or send game_name in the config"
            )
        allowed = {*self.allowed_games, *([self.game_name] if self.game_name else [])}
        registered_id(
            "game_name", game, allowed, default_option="--game", allow_option="--allow-game"
        )
        make_kwargs: dict[str, Any] = {}
        if max_episode_steps is not None:
            make_kwargs["max_episode_steps"] = config_int(
                "max_episode_steps", max_episode_steps, 1, _episode_limit(game)
            )
        if not config_flag("image", self.image if image is None else image):
            return GymEnv(game, seed=seed, **make_kwargs)
        sizes = {
            "contexts": config_int(
                "contexts", self.contexts if contexts is None else contexts, 1, MAX_CONTEXTS
            ),
            "height": config_int(
                "height", self.height if height is None else height, 1, MAX_FRAME_SIDE
            ),
            "width": config_int("width", self.width if width is None else width, 1, MAX_FRAME_SIDE),
        }
        colour = not config_flag("gray", self.gray if gray is None else gray)
        values = sizes["contexts"] * (3 if colour else 1) * sizes["height"] * sizes["width"]
        if values > MAX_IMAGE_VALUES:
            raise ValueError(
                f"contexts x {'3 colours' if colour else '1 gray'} x height x width must be at "
                f"most {MAX_IMAGE_VALUES}, got {values}"
            )
        return GymEnvImage(
            game,
            contexts=sizes["contexts"],
            height=sizes["height"],
            width=sizes["width"],
            gray=not colour,
            seed=seed,
            **make_kwargs,
        )


def _episode_limit(game: str) -> int:
    """The most steps a client may ask of ``game``'s episodes: its registered limit, or
    ``MAX_EPISODE_STEPS`` when it has none. (``game`` is allowed: when it names a module,
    ``gymnasium.make`` imports it too.)"""
    module, _, name = game.rpartition(":")
    if module:
        importlib.import_module(module)
    spec = gym.registry.get(name)
    limit = spec.max_episode_steps if spec is not None else None
    return int(limit) if limit else MAX_EPISODE_STEPS


_IMAGE_DEFAULTS = {"height": 84, "width": 84, "contexts": 4}
_IMAGE_LIMITS = {"height": MAX_FRAME_SIDE, "width": MAX_FRAME_SIDE, "contexts": MAX_CONTEXTS}


def _add_gym_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--game",
        required=True,
        help="the Gymnasium id, e.g. CartPole-v1 (MODULE:ID imports MODULE first); clients "
        "may also name any registered id",
    )
    group.add_argument(
        "--allow-game",
        action="append",
        metavar="ID",
        help="also let clients ask for this id, e.g. MODULE:ID (MODULE is imported when one "
        "does; no other MODULE:ID is); repeatable",
    )
    group.add_argument("--image", action="store_true", help="serve GymEnvImage frames")
    group.add_argument(
        "--height", type=int, help=f"--image: frame height, 1 to {MAX_FRAME_SIDE} (default: 84)"
    )
    group.add_argument(
        "--width", type=int, help=f"--image: frame width, 1 to {MAX_FRAME_SIDE} (default: 84)"
    )
    group.add_argument("--gray", action="store_true", help="--image: gray frames")
    group.add_argument(
        "--contexts",
        type=int,
        help=f"--image: stacked frames, 1 to {MAX_CONTEXTS}; contexts x channels x height x "
        f"width at most {MAX_IMAGE_VALUES} (default: 4)",
    )


def _build_gym(args: argparse.Namespace) -> ServedEnv:
    image_options = [name for name in (*_IMAGE_DEFAULTS, "gray") if getattr(args, name)]
    if image_options and not args.image:
        options = ", ".join(f"--{name}" for name in image_options)
        raise ValueError(f"{options} {'is' if len(image_options) == 1 else 'are'} only for --image")
    sizes = {
        name: default if getattr(args, name) is None else getattr(args, name)
        for name, default in _IMAGE_DEFAULTS.items()
    }
    for name, value in sizes.items():
        config_int(f"--{name}", value, 1, _IMAGE_LIMITS[name])
    allowed = frozenset(getattr(args, "allow_game", None) or ())
    factory = GymEnvFactory(args.game, args.image, gray=args.gray, allowed_games=allowed, **sizes)
    try:  # build one env now, so a bad game name fails here and not in the first session
        factory().close()
    except Exception as err:  # noqa: BLE001 - gymnasium raises its own error types
        raise ValueError(f"cannot build {args.game!r}: {err}") from None
    return ServedEnv(factory, f"Gym {args.game}{' as images' if args.image else ''}")


ADAPTER = Adapter(
    name="gym",
    summary="a Gymnasium game (GymEnv, or GymEnvImage frames with --image)",
    add_options=_add_gym_options,
    build=_build_gym,
)
