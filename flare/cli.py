"""The ``flare`` command."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flare import __version__
from flare.common.curves import first_reaching, plot_reward_curve, read_games, resolve_csv

if TYPE_CHECKING:
    from flare.env_zoo.registry import Adapter
    from flare.framework.env import Env


def _plot(args: argparse.Namespace) -> int:
    csv_path = resolve_csv(args.log)
    out = args.output or csv_path.with_name("reward_curve.png")
    plot_reward_curve(
        csv_path, out, window=args.window, threshold=args.threshold, success=args.success
    )
    log = read_games(csv_path)
    print(f"{len(log)} games; curve written to {out}")
    if args.threshold is not None:
        hit = first_reaching(log, args.threshold, args.window)
        if hit is None:
            print(f"mean return over {args.window} games never reached {args.threshold:g}")
        else:
            print(
                f"mean return over the last {args.window} games reached {args.threshold:g} "
                f"after {hit + 1} games ({log.wall_s[hit]:.1f} s)"
            )
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    from flare.bridge.factories import load_factory
    from flare.bridge.security import TLSFiles
    from flare.bridge.server import ServerSettings, serve, serve_until_signal
    from flare.env_zoo.registry import adapter_names

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    adapter = getattr(args, "adapter", None)
    if adapter is not None:
        served = adapter.build(args)
        factory, what = served.factory, served.description
    elif ":" in args.target:
        factory, what = load_factory(args.target), args.target
        if args.env_processes:
            factory = LoadedInEachProcess(args.target)
    else:
        raise ValueError(
            f"no adapter {args.target!r}: the bundled ones are {', '.join(adapter_names())}; "
            "or give MODULE:FACTORY, a callable returning a flare Env"
        )
    settings = ServerSettings(
        max_sessions=args.max_sessions,
        idle_timeout_s=args.idle_timeout,
        max_message_bytes=args.max_message_mb * 1024 * 1024,
        max_workers=args.max_workers,
        max_streams=args.max_streams,
        max_sessions_per_client=args.max_sessions_per_client,
        keepalive_s=args.keepalive,
        keepalive_timeout_s=args.keepalive_timeout,
        env_processes=args.env_processes,
    )
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    tls = TLSFiles(Path(args.tls_cert), Path(args.tls_key)) if args.tls_cert else None
    token = _read_token_file(args.token_file, args.command) if args.token_file else None
    server = serve(
        factory, args.address, settings=settings, tls=tls, token=token, insecure=args.insecure
    )
    print(f"flare simulator ({what}) listening on {server.address}", flush=True)
    serve_until_signal(server)
    print("flare simulator stopped", flush=True)
    return 0


@dataclass(frozen=True)
class LoadedInEachProcess:
    """``flare serve MODULE:FACTORY``'s factory as env worker processes get it: each loads
    it as the server did (``load_factory``: the working directory searched for that import
    alone). A pickled reference to the function would not do: the workers' ``sys.path``,
    like the server's, has no working directory on it."""

    target: str

    def __call__(self, **config: Any) -> Env:
        return _loaded(self.target)(**config)


@functools.cache
def _loaded(target: str) -> Callable[..., Env]:
    from flare.bridge.factories import load_factory

    return load_factory(target)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.help is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def build_parser(adapter: Adapter | None = None) -> argparse.ArgumentParser:
    """The command line; with ``adapter``, ``flare serve`` also takes that adapter's options
    (and only those)."""
    parser = argparse.ArgumentParser(
        prog="flare", description=__doc__, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"flare {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    plot = sub.add_parser(
        "plot", help="draw a reward curve from a run's games.csv", formatter_class=_HelpFormatter
    )
    plot.add_argument("log", help="a log directory (log_settings['log_dir']) or its games.csv")
    plot.add_argument("-o", "--output", help="PNG to write (default: reward_curve.png beside it)")
    plot.add_argument("--window", type=int, default=100, help="moving-average window (games)")
    plot.add_argument("--threshold", type=float, help="draw this return and report when reached")
    plot.add_argument(
        "--success", action="store_true", help="also draw the success rate over the window"
    )
    plot.set_defaults(func=_plot)
    _add_serve_parser(sub, adapter)
    _add_farm_parser(sub)
    _add_check_sim_parser(sub)
    _add_check_learner_parser(sub)
    from flare.learner.train_command import add_train_parser

    add_train_parser(sub, _HelpFormatter)
    from flare.learner.commands import add_learner_parsers

    add_learner_parsers(sub, _HelpFormatter, _read_token_file)
    return parser


def _add_serve_parser(sub: Any, adapter: Adapter | None) -> None:
    from flare.env_zoo.registry import adapter_names

    serve = sub.add_parser(
        "serve",
        help="serve environments over gRPC: a bundled adapter or MODULE:FACTORY",
        description="Serve environments over gRPC. TARGET is a bundled adapter "
        f"({', '.join(adapter_names())}; `flare serve NAME --help` shows its options) or "
        "MODULE:FACTORY, a callable returning a flare Env (the module may be in the current "
        "directory).",
        formatter_class=_HelpFormatter,
    )
    serve.add_argument("target", metavar="TARGET", help="an adapter name or MODULE:FACTORY")
    _add_serve_options(serve)
    if adapter is not None:
        adapter.add_options(serve.add_argument_group(f"{adapter.name}: {adapter.summary}"))
    serve.set_defaults(func=_serve, adapter=adapter)


def _add_serve_options(serve: argparse.ArgumentParser) -> None:
    """The options of every ``flare serve``, whatever its target."""
    serve.add_argument("--address", default="127.0.0.1:50051", help="HOST:PORT (port 0: any)")
    serve.add_argument("--max-sessions", type=int, default=64, help="open sessions at once")
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="close sessions, and cancel streams, idle this long (s); 0: never",
    )
    serve.add_argument("--max-message-mb", type=int, default=64, help="largest message (MiB)")
    serve.add_argument(
        "--max-streams",
        type=int,
        default=None,
        help="open streams at once, each with its own thread (default: max-sessions + 16)",
    )
    serve.add_argument(
        "--max-sessions-per-client",
        type=int,
        default=0,
        help="sessions (and streams) one client host may hold; 0: no quota",
    )
    serve.add_argument(
        "--max-workers", type=int, default=16, help="threads for unary calls and health checks"
    )
    serve.add_argument(
        "--keepalive",
        type=float,
        default=60.0,
        help="ping each connection this often (s); one that does not answer is closed",
    )
    serve.add_argument(
        "--keepalive-timeout",
        type=float,
        default=20.0,
        help="how long a ping may go unanswered (s)",
    )
    serve.add_argument(
        "--env-processes",
        type=int,
        default=0,
        help="host the envs in N worker processes (parallel StepMany, crash isolation); "
        "0: in the server process",
    )
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve over TLS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument("--token-file", help="a file holding the bearer token calls must carry")
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow binding beyond loopback without TLS and a token",
    )


def _add_farm_parser(sub: Any) -> None:
    farm = sub.add_parser(
        "farm",
        help="start N local `flare serve` servers together and write their farm file",
        description="Start N copies of `flare serve TARGET [options]` on free ports, write "
        "their addresses to a farm file (which flare train, RemoteEnv and check-sim take as "
        "an address), and stop them together at Ctrl-C or SIGTERM. Example: "
        "`flare farm --servers 4 gym --game CartPole-v1`.",
        formatter_class=_HelpFormatter,
    )
    farm.add_argument("--servers", type=int, default=2, help="how many servers")
    farm.add_argument("--farm-file", default="farm.txt", help="where to write the addresses")
    farm.add_argument("--host", default="127.0.0.1", help="the servers' host (port: any free)")
    farm.add_argument(
        "serve_args",
        nargs=argparse.REMAINDER,
        metavar="TARGET [serve options]",
        help="what each `flare serve` gets (not --address)",
    )
    farm.set_defaults(func=_farm)


def _farm(args: argparse.Namespace) -> int:
    from flare.farm.local import run_farm

    return run_farm(
        args.serve_args,
        args.servers,
        Path(args.farm_file),
        args.host,
        say=lambda line: print(line, flush=True),
    )


def _add_check_sim_parser(sub: Any) -> None:
    check = sub.add_parser(
        "check-sim",
        help="check a live simulator server against the wire contract",
        formatter_class=_HelpFormatter,
    )
    check.add_argument(
        "address",
        nargs="?",
        help="HOST:PORT of the simulator, several separated by commas, or a farm file "
        "(each server is checked)",
    )
    check.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="session config, repeatable (e.g. --config game_name=CartPole-v0)",
    )
    _add_check_options(check, "deadline of each call (s)")
    check.add_argument(
        "--max-sessions-probe", type=int, default=256, help="most sessions opened to find the cap"
    )
    check.add_argument(
        "--max-message-probe-mb", type=int, default=256, help="largest message sent (MiB)"
    )
    from flare.learner.commands import add_client_trust_options

    add_client_trust_options(check)
    check.set_defaults(func=_check_sim)


def _add_check_options(check: argparse.ArgumentParser, timeout_help: str) -> None:
    """What check-sim and check-learner share: which checks, and each call's deadline."""
    check.add_argument(
        "--only", action="append", metavar="CHECK", help="run only these checks (repeatable)"
    )
    check.add_argument("--list", action="store_true", help="list the checks and exit")
    check.add_argument("--timeout", type=float, default=10.0, help=timeout_help)


def _add_check_learner_parser(sub: Any) -> None:
    check = sub.add_parser(
        "check-learner",
        help="check a live learner's Act stream against the learner contract",
        formatter_class=_HelpFormatter,
        description="Open Act streams on a learner that takes them ([act] streams >= 1) and "
        "check the contract: the spec refused, bad tensors, interrupted streams, the protocol "
        "version, the quota. The checks play a few steps as the run's agents: point them at a "
        "run made for testing.",
    )
    check.add_argument("address", nargs="?", help="HOST:PORT of the learner")
    _add_check_options(check, "deadline of each answer (s)")
    from flare.learner.commands import add_client_trust_options

    add_client_trust_options(check)
    check.set_defaults(func=_check_learner)


def _check_learner(args: argparse.Namespace) -> int:
    from flare.compliance.act_probe import LearnerProbe, LearnerTarget
    from flare.compliance.learner_checks import LEARNER_CHECKS
    from flare.compliance.runner import run_checks, wait_until_reachable

    if args.list:
        return _list_checks(LEARNER_CHECKS)
    if not args.address:
        raise UsageError("check-learner needs the ADDRESS (HOST:PORT) of a learner")
    checks = _chosen(LEARNER_CHECKS, args.only, "check-learner")
    token = _checked_token(args)
    target = LearnerTarget(
        args.address,
        tls_root_cert=Path(args.tls_root_cert) if args.tls_root_cert else None,
        token=token,
        timeout_s=args.timeout,
    )
    wait_until_reachable(target, LearnerProbe, "learner")
    print(f"checking the learner at {args.address}", flush=True)
    results = run_checks(
        target, checks, lambda r: print(r.line(), flush=True), probe_class=LearnerProbe
    )
    return _summary(results)


def _list_checks(checks: Sequence[Any]) -> int:
    for check in checks:
        print(f"{check.name:<22} {check.rule}")
    return 0


def _chosen(checks: Sequence[Any], only: list[str] | None, command: str) -> tuple[Any, ...]:
    if not only:
        return tuple(checks)
    known = {check.name: check for check in checks}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; `flare {command} --list` lists them")
    return tuple(known[name] for name in only)


def _checked_token(args: argparse.Namespace, addresses: Sequence[str] = ()) -> str | None:
    """The token of ``--token-file``, once it may go to every address in the clear or not
    (refused before the file is read or any server reached)."""
    if not args.token_file:
        return None
    from flare.bridge.security import check_token_channel

    for address in addresses or (args.address,):
        check_token_channel(
            address, "token", bool(args.tls_root_cert), args.insecure, how="--insecure"
        )
    return _read_token_file(args.token_file, args.command)


def _summary(results: Sequence[Any]) -> int:
    counts = {
        outcome: sum(r.outcome == outcome for r in results) for outcome in ("PASS", "FAIL", "SKIP")
    }
    print(
        f"{len(results)} checks: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['SKIP']} skipped",
        flush=True,
    )
    return 1 if counts["FAIL"] else 0


def _read_token_file(path: str, command: str) -> str:
    """The token in ``path``, with a warning line on stderr when others may read the file."""
    from flare.bridge.security import read_token_file, token_file_warning

    warning = token_file_warning(Path(path))
    if warning:
        print(f"flare {command}: warning: {warning}", file=sys.stderr, flush=True)
    return read_token_file(Path(path), warn=False)


def _check_sim(args: argparse.Namespace) -> int:
    from flare.compliance import CHECKS, Target, run_checks
    from flare.compliance.runner import wait_until_reachable

    if args.list:
        return _list_checks(CHECKS)
    if not args.address:
        raise UsageError("check-sim needs the ADDRESS (HOST:PORT) of a simulator")
    config = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--config takes KEY=VALUE, got {item!r}")
        config[key] = value
    checks = _chosen(CHECKS, args.only, "check-sim")
    from flare.bridge.farm import farm_addresses

    addresses = farm_addresses(args.address)  # (one server, or each server of a farm)
    token = _checked_token(args, addresses)
    results = []
    for address in addresses:
        target = Target(
            address,
            config=config,
            tls_root_cert=Path(args.tls_root_cert) if args.tls_root_cert else None,
            token=token,
            timeout_s=args.timeout,
            max_sessions_probe=args.max_sessions_probe,
            max_message_probe_mb=args.max_message_probe_mb,
        )
        wait_until_reachable(target)
        print(f"checking the simulator at {address} (config {config})", flush=True)
        results += run_checks(target, checks, on_result=lambda r: print(r.line(), flush=True))
    return _summary(results)


class UsageError(ValueError):
    """A command line that cannot run; reported in one line, exit status 2."""


def _serve_target(argv: Sequence[str]) -> str | None:
    """The TARGET of a ``flare serve`` command line, if it has one (before parsing it, so
    the parser can take that adapter's options)."""
    if not argv or argv[0] != "serve":
        return None
    probe = argparse.ArgumentParser(prog="flare serve", add_help=False)
    _add_serve_options(probe)
    probe.add_argument("target", nargs="?")
    known, _ = probe.parse_known_args(argv[1:])  # (the adapter's own options are unknown here)
    return known.target


def main(argv: Sequence[str] | None = None) -> int:
    from flare.env_zoo.registry import find_adapter

    argv = list(sys.argv[1:] if argv is None else argv)
    target = _serve_target(argv)
    try:
        adapter = find_adapter(target) if target and ":" not in target else None
    except ImportError as err:  # an adapter whose optional packages are not installed
        print(f"flare serve: {err}", file=sys.stderr)
        return 2
    parser = build_parser(adapter)
    args, extra = parser.parse_known_args(argv)
    if extra:
        where = f"`flare {args.command}`"
        if args.command == "serve":
            where = f"`flare serve {args.target}` (`flare serve {args.target} --help` lists them)"
        parser.error(f"{' '.join(extra)}: not an option of {where}")
    try:
        return args.func(args)
    except (OSError, ValueError, ImportError) as err:
        print(f"flare {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # `python -m flare.cli`: `python -m flare` is the safer way in
    import os

    # (what this module imported already came before this; from here on, as flare/__main__)
    if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    sys.exit(main())
