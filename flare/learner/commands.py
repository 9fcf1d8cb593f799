"""``flare status``, ``flare checkpoint``, ``flare stop``: a running learner from a shell.

Each prints one line (or, with ``--json``, one JSON object) and exits 0; a learner that
cannot be reached, or a call it refuses, is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flare.learner.status import ProgressKind

if TYPE_CHECKING:  # (imported when a command runs: grpc stays out of `flare plot`)
    from flare.learner.client import LearnerClient, LearnerError

ReadToken = Callable[[str, str], str]  # (path, command) -> the token in that file


def add_learner_parsers(
    sub: Any, formatter: type[argparse.HelpFormatter], read_token: ReadToken
) -> None:
    """Register the three commands on ``flare``'s subparsers; ``read_token(path, command)``
    reads a ``--token-file`` as the other commands do."""
    commands = [
        ("status", "print a running learner's status", _status, 10.0),
        ("checkpoint", "make a running learner write a checkpoint now", _checkpoint, 60.0),
        ("stop", "stop a running learner gracefully (as SIGTERM does)", _stop, 10.0),
    ]
    for name, summary, run, timeout in commands:
        parser = sub.add_parser(name, help=summary, description=summary, formatter_class=formatter)
        parser.add_argument("address", help="HOST:PORT of the learner's Learner service")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--timeout", type=float, default=timeout, help="the call's deadline (s)"
        )
        add_client_trust_options(parser)
        if name == "status":
            parser.add_argument(
                "--watch",
                action="store_true",
                help="print a line per progress event and checkpoint until the run ends",
            )
        if name == "stop":
            parser.add_argument(
                "--reason", default="flare stop", help="why, as the learner logs and shows it"
            )
        parser.set_defaults(func=lambda args, run=run: _command(args, run, read_token))


def add_client_trust_options(parser: argparse.ArgumentParser) -> None:
    """How a client command reaches a server beyond loopback (check-sim's, and these)."""
    parser.add_argument("--tls-root-cert", help="PEM certificate(s) to trust: connect over TLS")
    parser.add_argument(
        "--token-file",
        help="a file holding the bearer token (beyond loopback: with --tls-root-cert, or "
        "--insecure)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="send --token-file's token without TLS beyond loopback (a trusted network)",
    )


def _command(
    args: argparse.Namespace,
    run: Callable[[LearnerClient, argparse.Namespace], str],
    read_token: ReadToken,
) -> int:
    from flare.bridge.security import check_token_channel
    from flare.learner.client import LearnerClient, LearnerError

    token = None
    if args.token_file:  # (refused before the file is read or the learner reached)
        check_token_channel(
            args.address, "token", bool(args.tls_root_cert), args.insecure, how="--insecure"
        )
        token = read_token(args.token_file, args.command)
    try:
        with LearnerClient(
            args.address, args.tls_root_cert, token, args.insecure, args.timeout
        ) as client:
            print(run(client, args), flush=True)  # noqa: T201 - a command's output
    except LearnerError as err:
        print(f"flare {args.command}: {_failure(err, args.address)}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def _failure(err: LearnerError, address: str) -> str:
    """One line: the status code's name and the learner's message."""
    import grpc

    message = " ".join(err.message.split())
    if err.code is grpc.StatusCode.UNAVAILABLE:
        return f"no learner reachable at {address} (UNAVAILABLE: {message})"
    return f"{err.code.name}: {message}"


def _status(client: LearnerClient, args: argparse.Namespace) -> str:
    if not args.watch:
        status = client.status()
        return _json(status) if args.json else status.line()
    line = "the run ended"  # (one line per progress event, until the run finishes)
    for event in client.watch():
        line = _json(event) if args.json else f"{event.kind.value}: {event.status.line()}"
        if event.kind is ProgressKind.FINISHED:
            break
        print(line, flush=True)  # noqa: T201 - a command's output
    return line


def _checkpoint(client: LearnerClient, args: argparse.Namespace) -> str:
    info = client.save_checkpoint(args.timeout)
    if args.json:
        return _json(info)
    return f"checkpoint {info.path} | policy v{info.policy_version} | games {info.games}"


def _stop(client: LearnerClient, args: argparse.Namespace) -> str:
    status = client.stop(args.reason)
    if args.json:
        return _json(status)
    return (
        f"{status.run_name}: {status.state.value} ({status.stop_reason}) after {status.games} games"
    )


def _json(value: object) -> str:
    return json.dumps(plain(value))


def plain(value: object) -> Any:
    """``value`` as JSON has it: data classes as objects, enums by value, paths as
    strings, NaN (no mean yet) as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
