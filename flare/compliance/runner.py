"""Run the contract's checks against a live simulator and report one line per check."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from flare.compliance.checks import CHECKS
from flare.compliance.probe import CheckFailed, CheckSkipped, Probe


@dataclass(frozen=True)
class CheckResult:
    """How one check went: ``outcome`` is PASS, FAIL or SKIP; ``detail`` says why."""

    name: str
    outcome: str
    detail: str
    seconds: float

    def line(self, width: int = 22) -> str:
        return f"{self.outcome}  {self.name:<{width}} {self.detail} ({self.seconds:.1f}s)"


def run_check(check: Any, target: Any, probe_class: Callable[[Any], Any] = Probe) -> str:
    """Run one check on fresh sessions (what a simulator's own pytest suite calls).

    Returns what the check saw; raises ``CheckFailed`` (an AssertionError) when the
    simulator breaks the rule, ``CheckSkipped`` (a SkipTest) when the rule does not apply.
    """
    probe = probe_class(target)
    try:
        return check.run(probe)
    finally:
        probe.close_all()


def run_checks(
    target: Any,
    checks: Sequence[Any] = CHECKS,
    on_result: Callable[[CheckResult], None] | None = None,
    probe_class: Callable[[Any], Any] = Probe,
) -> list[CheckResult]:
    """Every check in turn; a check that fails never stops the others."""
    results = []
    for check in checks:
        start = time.monotonic()
        try:
            outcome, detail = "PASS", run_check(check, target, probe_class)
        except CheckSkipped as skipped:
            outcome, detail = "SKIP", str(skipped)
        except CheckFailed as failed:
            outcome, detail = "FAIL", str(failed)
        except grpc.RpcError as err:
            outcome, detail = "FAIL", f"unexpected {err.code().name}: {err.details()}"
        except Exception as err:  # noqa: BLE001 - a broken simulator may do anything
            outcome, detail = "FAIL", f"{type(err).__name__}: {err}"
        result = CheckResult(check.name, outcome, detail, time.monotonic() - start)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def wait_until_reachable(
    target: Any, probe_class: Callable[[Any], Any] = Probe, what: str = "simulator"
) -> None:
    """Raise ConnectionError if the target does not answer within its timeout."""
    probe = probe_class(target)
    try:
        grpc.channel_ready_future(probe.channel).result(timeout=target.timeout_s)
    except grpc.FutureTimeoutError:
        raise ConnectionError(
            f"no {what} answers at {target.address} within {target.timeout_s}s"
        ) from None
    finally:
        probe.close_all()
