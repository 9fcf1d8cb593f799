"""The simulator contract: stubs generated from protos/flare/simulator/v1/simulator.proto."""

from flare.simulator.v1 import simulator_pb2 as _pb

# The one spelling of the service's full name (health checks, reflection, auth, checks).
SERVICE_NAME: str = _pb.DESCRIPTOR.services_by_name["Simulator"].full_name
