"""The ``flare`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flare.common.curves import first_reaching, plot_reward_curve, read_games, resolve_csv


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

    from flare.bridge.factories import GymEnvFactory, MiniGridEnvFactory, load_factory
    from flare.bridge.security import TLSFiles
    from flare.bridge.server import ServerSettings, serve, serve_until_signal

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.target == "gym":
        if not args.game:
            raise ValueError("`flare serve gym` needs --game, e.g. --game CartPole-v0")
        factory = GymEnvFactory(
            args.game, args.image, args.height, args.width, args.gray, args.contexts
        )
        try:  # build one env now, so a bad game name fails here and not in the first session
            factory().close()
        except Exception as err:  # noqa: BLE001 - gymnasium raises its own error types
            raise ValueError(f"cannot build {args.game!r}: {err}") from None
        what = f"Gym {args.game}{' as images' if args.image else ''}"
    elif args.target == "minigrid":
        if not args.level:
            raise ValueError(
                "`flare serve minigrid` needs --level, e.g. --level BabyAI-GoToLocalS6N2-v0"
            )
        factory = MiniGridEnvFactory(
            args.level, args.actions, args.instruction_length, args.wrong_object_ends
        )
        try:  # build and reset one env now: a bad level or mission fails here, not later
            env = factory()
            env.reset()
            env.close()
        except Exception as err:  # noqa: BLE001 - gymnasium and minigrid raise their own
            raise ValueError(f"cannot serve {args.level!r}: {err}") from None
        what = f"MiniGrid {args.level}, {env.action_dims()['action']} actions"
    else:
        factory = load_factory(args.target)
        what = args.target
    settings = ServerSettings(
        max_sessions=args.max_sessions,
        idle_timeout_s=args.idle_timeout,
        max_message_bytes=args.max_message_mb * 1024 * 1024,
        env_processes=args.env_processes,
    )
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    tls = TLSFiles(Path(args.tls_cert), Path(args.tls_key)) if args.tls_cert else None
    token = Path(args.token_file).read_text().strip() if args.token_file else None
    server = serve(
        factory, args.address, settings=settings, tls=tls, token=token, insecure=args.insecure
    )
    print(f"flare simulator ({what}) listening on {server.address}", flush=True)
    serve_until_signal(server)
    print("flare simulator stopped", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plot = sub.add_parser("plot", help="draw a reward curve from a run's games.csv")
    plot.add_argument("log", help="a log directory (log_settings['log_dir']) or its games.csv")
    plot.add_argument("-o", "--output", help="PNG to write (default: reward_curve.png beside it)")
    plot.add_argument("--window", type=int, default=100, help="moving-average window (games)")
    plot.add_argument("--threshold", type=float, help="draw this return and report when reached")
    plot.add_argument(
        "--success", action="store_true", help="also draw the success rate over the window"
    )
    plot.set_defaults(func=_plot)

    serve = sub.add_parser(
        "serve",
        help="serve environments over gRPC: `gym` or `minigrid` (the bundled adapters) or "
        "MODULE:FACTORY",
    )
    serve.add_argument("target", help="`gym`, `minigrid`, or MODULE:FACTORY returning a flare Env")
    serve.add_argument("--address", default="127.0.0.1:50051", help="HOST:PORT (port 0: any)")
    serve.add_argument("--game", help="gym: the Gymnasium id, e.g. CartPole-v0")
    serve.add_argument("--image", action="store_true", help="gym: serve GymEnvImage frames")
    serve.add_argument("--height", type=int, default=84, help="gym --image: frame height")
    serve.add_argument("--width", type=int, default=84, help="gym --image: frame width")
    serve.add_argument("--gray", action="store_true", help="gym --image: gray frames")
    serve.add_argument("--contexts", type=int, default=4, help="gym --image: stacked frames")
    serve.add_argument(
        "--level", help="minigrid: a BabyAI or MiniGrid id, e.g. BabyAI-GoToLocalS6N2-v0"
    )
    serve.add_argument(
        "--actions",
        choices=["auto", "navigation", "all"],
        default="auto",
        help="minigrid: the 3 moves (navigation), all 7 actions, or auto (moves for GoTo levels)",
    )
    serve.add_argument(
        "--instruction-length", type=int, default=16, help="minigrid: tokens per instruction"
    )
    serve.add_argument(
        "--wrong-object-ends",
        action="store_true",
        help="minigrid GoTo levels: facing an object the instruction does not name fails",
    )
    serve.add_argument("--max-sessions", type=int, default=64, help="open sessions at once")
    serve.add_argument(
        "--idle-timeout", type=float, default=300.0, help="close sessions idle this long (s)"
    )
    serve.add_argument("--max-message-mb", type=int, default=64, help="largest message (MiB)")
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
    serve.set_defaults(func=_serve)

    check = sub.add_parser(
        "check-sim", help="check a live simulator server against the wire contract"
    )
    check.add_argument("address", help="HOST:PORT of the simulator")
    check.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="session config, repeatable (e.g. --config game_name=CartPole-v0)",
    )
    check.add_argument(
        "--only", action="append", metavar="CHECK", help="run only these checks (repeatable)"
    )
    check.add_argument("--list", action="store_true", help="list the checks and exit")
    check.add_argument("--timeout", type=float, default=10.0, help="deadline of each call (s)")
    check.add_argument(
        "--max-sessions-probe", type=int, default=256, help="most sessions opened to find the cap"
    )
    check.add_argument(
        "--max-message-probe-mb", type=int, default=256, help="largest message sent (MiB)"
    )
    check.add_argument("--tls-root-cert", help="PEM certificate(s) to trust: connect over TLS")
    check.add_argument("--token-file", help="a file holding the bearer token")
    check.set_defaults(func=_check_sim)
    return parser


def _check_sim(args: argparse.Namespace) -> int:
    from flare.compliance import CHECKS, Target, run_checks
    from flare.compliance.runner import wait_until_reachable

    if args.list:
        for check in CHECKS:
            print(f"{check.name:<22} {check.rule}")
        return 0
    config = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--config takes KEY=VALUE, got {item!r}")
        config[key] = value
    checks = CHECKS
    if args.only:
        known = {check.name: check for check in CHECKS}
        unknown = [name for name in args.only if name not in known]
        if unknown:
            raise ValueError(f"unknown checks {unknown}; `flare check-sim --list` lists them")
        checks = tuple(known[name] for name in args.only)
    target = Target(
        args.address,
        config=config,
        tls_root_cert=Path(args.tls_root_cert) if args.tls_root_cert else None,
        token=Path(args.token_file).read_text().strip() if args.token_file else None,
        timeout_s=args.timeout,
        max_sessions_probe=args.max_sessions_probe,
        max_message_probe_mb=args.max_message_probe_mb,
    )
    wait_until_reachable(target)
    print(f"checking the simulator at {args.address} (config {config})", flush=True)
    results = run_checks(target, checks, on_result=lambda r: print(r.line(), flush=True))
    counts = {
        outcome: sum(r.outcome == outcome for r in results) for outcome in ("PASS", "FAIL", "SKIP")
    }
    print(
        f"{len(results)} checks: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['SKIP']} skipped",
        flush=True,
    )
    return 1 if counts["FAIL"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, ImportError, ConnectionError) as err:
        print(f"flare {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
