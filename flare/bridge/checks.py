"""Earlier name of ``flare.bridge.request_validation`` (checking requests against a spec).

Not to be confused with ``flare.compliance``, the contract checks run against a server.
"""

from flare.bridge.request_validation import ActionCheck, ObservationCheck, SpecChecks, broken

__all__ = ["ActionCheck", "ObservationCheck", "SpecChecks", "broken"]
