"""``flare train RUN.toml``: a run from its config, in its run directory, as a service."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from flare.learner.config import ConfigError, RunConfig, load_config, parse_config


def add_train_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    train = sub.add_parser(
        "train",
        help="train the run a TOML config describes (see docs/learner.md)",
        description="Train the run RUN.toml describes, in a run directory (config, games.csv, "
        "checkpoints, TensorBoard events), serving the Learner service (`flare status`).",
        formatter_class=formatter,
    )
    train.add_argument("config", nargs="?", metavar="RUN.toml", help="the run's config")
    train.add_argument("--run-dir", help="the run directory (default: runs/NAME)")
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its latest checkpoint (RUN.toml may then be "
        "left out: DIR keeps the config it ran)",
    )
    train.add_argument(
        "--learner-address", help="HOST:PORT of the Learner service (default: the config's)"
    )
    train.set_defaults(func=train_main)


def train_main(args: argparse.Namespace) -> int:
    from flare.learner.run_dir import RunDirectory

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.resume and args.run_dir and Path(args.resume) != Path(args.run_dir):
        raise ConfigError("--resume DIR is the run directory: leave --run-dir out")
    if args.resume:
        run_dir = RunDirectory.open(args.resume)
        config, text = _resumed_config(run_dir, args.config)
    elif args.config:
        config, text = load_config(args.config)
        run_dir = RunDirectory(Path(args.run_dir or Path("runs") / config.name))
        run_dir.refuse_existing()  # (checked before anything starts, created after the build)
    else:
        raise ConfigError("flare train needs RUN.toml (or --resume DIR)")
    return _train(config, text, run_dir, args, new=not args.resume)


def _resumed_config(run_dir: Any, given: str | None) -> tuple[RunConfig, str]:
    """The config a run ran with; a RUN.toml given on resume may change only its budget,
    stop targets, logging and service (``agents.games``, ``[stop]``, ``[log]``,
    ``[learner]``)."""
    if not run_dir.config_path.is_file():
        raise ConfigError(f"{run_dir.path} has no config.toml to resume from")
    saved_text = run_dir.config_path.read_text()
    saved = parse_config(saved_text, default_name=run_dir.path.name)
    if given is None:
        return saved, saved_text
    config, text = load_config(given)
    free = ("stop", "log", "learner")
    for key in ("name", "seed", "torch_threads", "env", "cts"):
        if getattr(config, key) != getattr(saved, key):
            raise ConfigError(
                f"{given}: {key} differs from the run's config; a resumed run may change "
                f"only agents.games, {', '.join(f'[{k}]' for k in free)}"
            )
    same_agents = dict(vars(config.agents), games=saved.agents.games)
    if same_agents != vars(saved.agents):
        raise ConfigError(f"{given}: [agents] differs from the run's (only games may change)")
    return config, text


def _train(config: RunConfig, text: str, run_dir: Any, args: argparse.Namespace, new: bool) -> int:
    from flare.framework.manager import TrainingError
    from flare.learner.build import build_run
    from flare.learner.environments import open_env_source
    from flare.learner.learner import Learner, LearnerSettings
    from flare.learner.run_dir import RunDirectory

    learner_config = config.learner
    with open_env_source(config.env, config.seed, Path.cwd()) as source:
        manager, spec = build_run(config, source)
        if new:
            run_dir = RunDirectory.create(run_dir.path, text, sys.argv)
        elif args.config:  # the budget or the targets changed: keep the config as run
            run_dir.config_path.write_text(text)
        settings = LearnerSettings(
            run_name=config.name,
            address=(args.learner_address or learner_config.address)
            if learner_config.serve or args.learner_address
            else None,
            progress_interval_s=learner_config.progress_interval_s,
            checkpoint_every_games=config.log.checkpoint_every_games,
            checkpoint_every_s=config.log.checkpoint_every_s,
            keep_checkpoints=config.log.keep_checkpoints,
            save_buffers=config.log.save_replay,
            pause_timeout_s=config.log.checkpoint_timeout_s,
            tensorboard=config.log.tensorboard,
            progress=config.log.progress,
            tls=_tls(learner_config),
            token=_token(learner_config),
            insecure=learner_config.insecure,
            simulators=source.addresses,
            act_open_wait_s=config.act.open_wait_s,
        )
        learner = Learner(
            manager, run_dir, settings, config_text=text, resume=not new, env_spec=spec
        )
        try:
            learner.run(config.stop.mean_return, config.stop.success_rate, command=sys.argv)
        except TrainingError as err:
            print(f"flare train: the run failed:\n{err}", file=sys.stderr, flush=True)
            return 1
    status = learner.tracker.status()
    print(f"flare train: {status.line()}", flush=True)
    if manager.reached_target:
        print("flare train: the stop target was reached", flush=True)
    return 0


def _tls(config: Any) -> Any:
    if not config.tls_cert:
        return None
    from flare.bridge.security import TLSFiles

    return TLSFiles(Path(config.tls_cert), Path(config.tls_key))


def _token(config: Any) -> str | None:
    if not config.token_file:
        return None
    from flare.bridge.security import read_token_file

    return read_token_file(Path(config.token_file))
