"""Env factories for ``flare serve MODULE:FACTORY``: a user's own, from the command line.

The bundled adapters' factories (``GymEnvFactory``, ``MiniGridEnvFactory``) live with their
adapters in ``flare.env_zoo``; their old names here still work, without the bridge
importing the zoo.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from flare.framework.env import Env

_MOVED = {
    "GymEnvFactory": "flare.env_zoo.gym_env",
    "MiniGridEnvFactory": "flare.env_zoo.minigrid_env",
}


def load_factory(target: str) -> Callable[..., Env]:
    """``"package.module:function"`` -> that callable.

    The module may sit in the current directory (``flare serve my_sim:make_env`` run
    beside ``my_sim.py``): the directory is searched for this import only, so nothing
    else the server imports later (e.g. from a client's session config) comes from it.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected MODULE:FACTORY (e.g. my_sim:make_env), got {target!r}")
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(here)
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attr!r}") from None
    if not callable(factory):
        raise ValueError(f"{target} is not callable")
    return factory


def __getattr__(name: str) -> object:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
