"""The simulator contract as executable checks (``flare check-sim``, or pytest).

from flare.compliance import CHECKS, Target, run_check

@pytest.mark.parametrize("check", CHECKS, ids=str)
def test_contract(check):
    run_check(check, Target("127.0.0.1:50052", config={"level": "1"}))
"""

from flare.compliance.checks import CHECKS, Check
from flare.compliance.probe import CheckFailed, CheckSkipped, Target
from flare.compliance.runner import CheckResult, run_check, run_checks

__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "Target",
    "run_check",
    "run_checks",
]
