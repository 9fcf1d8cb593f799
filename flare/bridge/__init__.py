"""The simulator bridge: FLARE environments as gRPC services, and the client that uses them."""

from flare.bridge.client import RemoteEnv
from flare.bridge.errors import SimulatorError
from flare.bridge.server import ServerSettings, SimulatorServer, serve

__all__ = ["RemoteEnv", "ServerSettings", "SimulatorError", "SimulatorServer", "serve"]
