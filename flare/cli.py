"""The ``flare`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flare.common.curves import first_reaching, plot_reward_curve, read_games, resolve_csv


def _plot(args: argparse.Namespace) -> int:
    csv_path = resolve_csv(args.log)
    out = args.output or csv_path.with_name("reward_curve.png")
    plot_reward_curve(csv_path, out, window=args.window, threshold=args.threshold)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plot = sub.add_parser("plot", help="draw a reward curve from a run's games.csv")
    plot.add_argument("log", help="a log directory (log_settings['log_dir']) or its games.csv")
    plot.add_argument("-o", "--output", help="PNG to write (default: reward_curve.png beside it)")
    plot.add_argument("--window", type=int, default=100, help="moving-average window (games)")
    plot.add_argument("--threshold", type=float, help="draw this return and report when reached")
    plot.set_defaults(func=_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"flare {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
