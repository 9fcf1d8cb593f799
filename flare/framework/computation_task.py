"""ComputationTask: numpy in, numpy out. The only place PyTorch touches agent data."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from flare.framework.algorithm import Algorithm, TensorDict
from flare.framework.batch import ArrayDict, LearnBatch
from flare.framework.experience import DataKeys
from flare.framework.specs import ArraySpec

ALIVE_SPEC = ArraySpec("alive", np.dtype("float32"), (1,))
ACTING_MODEL = "acting_model"  # (a checkpoint's key for the acting copy's weights)
_TORCH_FLOATS = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


class ComputationTask:
    """Wraps one Algorithm: converts batched numpy data to tensors, calls it, converts back.

    A lock serialises prediction, learning and checkpointing, which may come from
    different threads. CTs whose models share parameters must share one lock (the
    Manager gives them one: see ``build_computation_tasks``), or one CT's update could
    change weights in the middle of the other's.
    """

    def __init__(self, name: str, algorithm: Algorithm, lock: threading.Lock | None = None) -> None:
        if not isinstance(algorithm, Algorithm):
            raise TypeError(f"CT {name!r}: algorithm must be a flare Algorithm, got {algorithm!r}")
        self.name = name
        self.alg = algorithm
        self.lock = lock if lock is not None else threading.Lock()
        # with learning beside acting: a copy of the algorithm that predicts, its model's
        # weights set from the learner's at the points ``sync_acting`` is called
        self.acting: Algorithm | None = None
        self._acting_lock = threading.Lock()

    def act_on_a_copy(self) -> None:
        """Predict with a copy of the algorithm from now on, so learning may run in
        another thread meanwhile; the copy's weights change only in ``sync_acting``."""
        with self.lock:
            if self.acting is None:
                self.acting = copy.deepcopy(self.alg)

    def sync_acting(self) -> None:
        """Give the acting copy the learner's weights (and buffers) as they are now."""
        if self.acting is None:
            return
        with self.lock, self._acting_lock:
            self.acting.model.load_state_dict(self.alg.model.state_dict())

    @property
    def keys(self) -> DataKeys:
        alg = self.alg
        return DataKeys(
            inputs=tuple(s.name for s in alg.input_specs),
            actions=tuple(s.name for s in alg.action_specs),
            states=tuple(s.name for s in alg.state_specs),
            rewards=tuple(s.name for s in alg.reward_specs),
            behavior=tuple(s.name for s in alg.behavior_specs),
        )

    def _to_tensors(self, arrays: ArrayDict, specs: Sequence[ArraySpec], field: str) -> TensorDict:
        tensors = {}
        for spec in specs:
            if spec.name not in arrays:
                raise KeyError(
                    f"CT {self.name!r}: {field} lacks {spec.name!r} (got {sorted(arrays)})"
                )
            array = np.asarray(arrays[spec.name])
            if array.shape[1:] != spec.shape:
                raise ValueError(
                    f"CT {self.name!r}: {field}[{spec.name!r}] has per-instance shape "
                    f"{array.shape[1:]}, the model's spec says {spec.shape}"
                )
            if array.dtype == np.uint8 and spec.dtype.kind == "f":
                tensors[spec.name] = self._frames(array, spec.dtype)
                continue
            array = np.ascontiguousarray(array, dtype=spec.dtype)
            tensors[spec.name] = torch.from_numpy(array).to(self.alg.device)
        return tensors

    def _frames(self, pixels: np.ndarray, dtype: np.dtype) -> torch.Tensor:
        """uint8 pixels for a float input: moved to the device as bytes (a quarter of
        float32's), then scaled to [0, 1] there, once per batch. (A model that wants the
        bytes themselves declares its input uint8.)"""
        tensor = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.alg.device)
        return tensor.to(_TORCH_FLOATS[dtype]).div_(255.0)

    @staticmethod
    def _to_arrays(tensors: TensorDict) -> ArrayDict:
        return {k: v.detach().cpu().numpy() for k, v in tensors.items()}

    def predict(
        self, inputs: ArrayDict, states: ArrayDict
    ) -> tuple[ArrayDict, ArrayDict, ArrayDict]:
        """Actions, next states and behavior data (for learning only) for a batch."""
        alg = self.alg if self.acting is None else self.acting
        lock = self.lock if self.acting is None else self._acting_lock
        with lock, torch.no_grad():
            if alg.model.training:  # (switching walks every module: skip it when already set)
                alg.model.eval()
            outputs, next_states = alg.predict(
                self._to_tensors(inputs, alg.input_specs, "inputs"),
                self._to_tensors(states, alg.state_specs, "states"),
            )
        action_names = [s.name for s in alg.action_specs]
        behavior_names = [s.name for s in alg.behavior_specs]
        unknown = sorted(set(outputs) - set(action_names) - set(behavior_names))
        missing = sorted(set(action_names + behavior_names) - set(outputs))
        if unknown or missing:
            raise KeyError(
                f"CT {self.name!r}: {type(alg).__name__}.predict() must return exactly the "
                f"actions {action_names} and behavior data {behavior_names}; "
                f"missing {missing}, undeclared {unknown}"
            )
        arrays = self._to_arrays(outputs)
        actions = {k: arrays[k] for k in action_names}
        behavior = {k: arrays[k] for k in behavior_names}
        return actions, self._to_arrays(next_states), behavior

    def learn(self, batch: LearnBatch) -> ArrayDict:
        """One update on a batch of transitions; returns the per-sample costs."""
        alg = self.alg
        action_specs = [*alg.action_specs, *alg.behavior_specs]
        tensors = dict(
            inputs=self._to_tensors(batch.inputs, alg.input_specs, "inputs"),
            next_inputs=self._to_tensors(batch.next_inputs, alg.input_specs, "next_inputs"),
            states=self._to_tensors(batch.states, alg.state_specs, "states"),
            next_states=self._to_tensors(batch.next_states, alg.state_specs, "next_states"),
            next_alive=self._to_tensors(batch.next_alive, [ALIVE_SPEC], "next_alive"),
            actions=self._to_tensors(batch.actions, action_specs, "actions"),
            next_actions=self._to_tensors(batch.next_actions, action_specs, "next_actions"),
            rewards=self._to_tensors(batch.rewards, alg.reward_specs, "rewards"),
        )
        assert batch.sample_weights is not None and batch.sequence_lengths is not None
        weights = torch.from_numpy(batch.sample_weights).to(alg.device)
        with self.lock:
            costs = alg.update(
                **tensors,
                sample_weights=weights,
                sequence_lengths=[int(n) for n in batch.sequence_lengths],
            )
        return self._to_arrays(costs)

    def state_dict(self) -> dict[str, Any]:
        """The algorithm's state; with an acting copy, the copy's model too (a resumed
        run then acts on the weights it acted on)."""
        with self.lock:
            state = alg_state_to_cpu(self.alg.state_dict())
        if self.acting is not None:
            with self._acting_lock:
                state[ACTING_MODEL] = alg_state_to_cpu(self.acting.model.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        acting = state.pop(ACTING_MODEL, None)
        with self.lock:
            self.alg.load_state_dict(state)
        if self.acting is not None:
            with self._acting_lock:
                self.acting.model.load_state_dict(
                    acting if acting is not None else self.alg.model.state_dict()
                )


def build_computation_tasks(algorithms: dict[str, Algorithm]) -> dict[str, ComputationTask]:
    """One CT per algorithm; CTs whose models share any parameter (e.g. an RL task and an
    auxiliary task on one perception net) share one lock, so their updates never
    interleave."""
    group = {name: name for name in algorithms}  # union-find over CT names

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    owner: dict[int, str] = {}
    for name, alg in algorithms.items():
        for param in alg.model.parameters():
            other = owner.setdefault(id(param), name)
            if root(other) != root(name):
                group[root(name)] = root(other)
    locks = {name: threading.Lock() for name in algorithms if root(name) == name}
    return {name: ComputationTask(name, alg, locks[root(name)]) for name, alg in algorithms.items()}


def alg_state_to_cpu(state: Any) -> Any:
    """A deep copy on the CPU, so a checkpoint never aliases live parameters."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu().clone()
    if isinstance(state, dict):
        return {k: alg_state_to_cpu(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(alg_state_to_cpu(v) for v in state)
    return state
