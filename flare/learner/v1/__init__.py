"""The learner contract: stubs generated from protos/flare/learner/v1/learner.proto."""

from flare.learner.v1 import learner_pb2 as _pb

# The one spelling of the service's full name (health checks, reflection, auth).
SERVICE_NAME: str = _pb.DESCRIPTOR.services_by_name["Learner"].full_name
