"""Farms of simulator servers: started on this machine (``flare farm``, ``LocalFarm``) or
placed beyond it on a Ray cluster (``flare.farm.ray``, the ``flare[ray]`` extra)."""

from flare.farm.local import LocalFarm

__all__ = ["LocalFarm"]
