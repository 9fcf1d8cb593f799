"""Many sessions of a FLARE simulator (or of a farm) as one ``gymnasium.vector.VectorEnv``.

Each server's sessions step together in one ``StepManyStream`` message per step, with
the server resetting ended episodes in the same call: Gymnasium's ``SAME_STEP``
autoreset mode (declared in ``metadata``). The observation of an ended episode's row is
the next episode's first; its last one is in ``infos["final_obs"]`` (and the row's info
in ``infos["final_info"]``), as ``SyncVectorEnv`` gives them in that mode.

``gymnasium.make_vec("flare/Remote-v0", num_envs=16, vectorization_mode=
"vector_entry_point", address="farm.txt")`` after ``import flare.gymnasium``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from flare.bridge.client import RECOVERABLE, RemoteEnv
from flare.bridge.codec import decode, encode_into
from flare.bridge.errors import SimulatorError
from flare.bridge.farm import Addresses
from flare.bridge.step_batch import StepBatcher
from flare.gymnasium.spaces import Converter, action_space, observation_space
from flare.simulator.v1 import simulator_pb2 as pb

logger = logging.getLogger(__name__)


class RemoteVectorEnv(VectorEnv):
    """``num_envs`` sessions spread over the servers at ``address`` (one, a list, or a
    farm file) by their load; session ``i`` is seeded ``seed + i``.

    When a server dies, its rows' episodes end as truncated (``infos["interrupted"]``
    marks them: no false termination) and their sessions open again on live servers.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self, num_envs: int, address: Addresses, seed: int | None = None, **config: Any
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.envs: list[RemoteEnv] = []
        try:
            for i in range(num_envs):
                session_seed = None if seed is None else seed + i
                self.envs.append(RemoteEnv(address, seed=session_seed, **config))
        except BaseException:
            self.close()
            raise
        spec = self.envs[0].spec()
        self._spec = spec
        self._convert = Converter(spec)
        self.single_observation_space = observation_space(spec)
        self.single_action_space = action_space(spec)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._settings = self.envs[0].settings
        self._batchers: dict[str, StepBatcher] = {}
        self._last: list[dict[str, np.ndarray]] = [{} for _ in range(num_envs)]

    # ----- VectorEnv ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed if isinstance(seed, int) else None)
        seeds: list[int | None]
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"{len(seed)} seeds for {self.num_envs} envs")
            seeds = list(seed)
        for i, (env, row_seed) in enumerate(zip(self.envs, seeds, strict=True)):
            if row_seed is not None:
                env.reseed(row_seed)
            self._last[i] = env.reset()
        return self._batched(self._last), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        rows = self._action_rows(actions)
        rewards = np.zeros(self.num_envs, np.float64)
        terminations = np.zeros(self.num_envs, np.bool_)
        truncations = np.zeros(self.num_envs, np.bool_)
        infos: dict[str, Any] = {}
        by_server: dict[str, list[int]] = {}
        for i, env in enumerate(self.envs):
            by_server.setdefault(env.address, []).append(i)
        sent = []
        for address, members in by_server.items():  # every server steps at once
            self._batcher(address).send(self._request(members, rows))
            sent.append((address, members))
        for address, members in sent:
            try:
                answer = self._batcher(address).receive()
            except SimulatorError as err:
                if err.code not in RECOVERABLE:
                    raise
                self._interrupted(members, address, err, truncations, infos)
                continue
            self._take(answer, members, rewards, terminations, truncations, infos)
        return self._batched(self._last), rewards, terminations, truncations, infos

    def close_extras(self, **kwargs: Any) -> None:
        for batcher in self._batchers.values():
            batcher.close()
        self._batchers = {}
        for env in self.envs:
            env.close()

    # ----- rows ---------------------------------------------------------------------------
    def _action_rows(self, actions: Any) -> list[dict[str, np.ndarray]]:
        if len(self._spec.actions) == 1:
            batch = np.asarray(actions)
            return [self._convert.actions(batch[i]) for i in range(self.num_envs)]
        return [
            self._convert.actions({name: np.asarray(v)[i] for name, v in actions.items()})
            for i in range(self.num_envs)
        ]

    def _request(self, members: list[int], rows: list[dict[str, np.ndarray]]) -> Any:
        request = pb.StepManyRequest(auto_reset=True)
        request.session_ids.extend(str(self.envs[i].session_id) for i in members)
        for spec in self._spec.actions:
            stacked = np.stack([rows[i][spec.name] for i in members])
            encode_into(request.actions[spec.name], stacked, f"actions[{spec.name!r}]")
        return request

    def _take(
        self,
        answer: Any,
        members: list[int],
        rewards: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
        infos: dict[str, Any],
    ) -> None:
        observations = {k: decode(v) for k, v in answer.observations.items()}
        reward = {k: decode(v) for k, v in answer.rewards.items()}
        game_over, time_out = decode(answer.game_over), decode(answer.time_out)
        finals = {k: decode(v) for k, v in answer.final_observations.items()}
        reset_at = {row: n for n, row in enumerate(answer.reset_rows)}
        for row, i in enumerate(members):
            self._last[i] = {k: v[row] for k, v in observations.items()}
            rewards[i] = self._convert.reward({k: v[row] for k, v in reward.items()})
            terminations[i] = game_over[row] != 0
            truncations[i] = bool(time_out[row])
            info: dict[str, Any] = {}
            if terminations[i]:
                info["is_success"] = bool(game_over[row] == 1)
            if row in reset_at:
                final = {k: v[reset_at[row]] for k, v in finals.items()}
                infos = self._add_info(
                    infos, {"final_obs": self._convert.observation(final), "final_info": info}, i
                )
            elif info:
                infos = self._add_info(infos, info, i)

    def _interrupted(
        self,
        members: list[int],
        address: str,
        err: SimulatorError,
        truncations: np.ndarray,
        infos: dict[str, Any],
    ) -> None:
        """A lost server: its rows' episodes end truncated, and start on live servers."""
        logger.warning("simulator %s: %s; its %d sessions move", address, err, len(members))
        batcher = self._batchers.pop(address, None)
        if batcher is not None:
            batcher.close()
        for i in members:
            env = self.envs[i]
            env.lost_server(f"StepMany: {err.code.name}")
            final = self._convert.observation(self._last[i])
            self._last[i] = env.reset()  # (a session on a live server)
            truncations[i] = True
            infos = self._add_info(
                infos, {"final_obs": final, "final_info": {}, "interrupted": True}, i
            )

    def _batcher(self, address: str) -> StepBatcher:
        batcher = self._batchers.get(address)
        if batcher is None:
            batcher = self._batchers[address] = StepBatcher(address, self._settings)
        return batcher

    def _batched(self, observations: list[dict[str, np.ndarray]]) -> Any:
        names = [s.name for s in self._spec.observations]
        stacked = {name: np.stack([o[name] for o in observations]) for name in names}
        return stacked[names[0]] if len(names) == 1 else stacked
