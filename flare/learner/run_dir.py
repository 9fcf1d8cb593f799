"""A run directory: everything one run leaves, so it can be read, plotted and resumed.

    RUN_DIR/
      config.toml      the config as run (when the run came from one)
      run.json         versions, and each session's command, start and checkpoint
      games.csv        one row per finished game; numbers and wall_s go on across resumes
      checkpoints/     one directory per checkpoint, LATEST names the newest complete one
      tensorboard/     TensorBoard event files
      learner.json     while the learner runs: the address of its Learner service

A checkpoint is written into a temporary directory and renamed when complete, and LATEST
is replaced atomically after it, so a learner killed at any moment leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"
CONFIG_FILE = "config.toml"
GAMES_FILE = "games.csv"
LEARNER_FILE = "learner.json"
CHECKPOINTS = "checkpoints"
LATEST = "LATEST"
TENSORBOARD = "tensorboard"
VERSIONED = ("flare", "torch", "numpy", "gymnasium", "grpcio", "protobuf", "tensorboard")


class RunDirectoryError(ValueError):
    """A run directory that cannot be used as asked (one clear line)."""


@dataclass(frozen=True)
class RunDirectory:
    path: Path

    # ----- creating and opening ------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config_text: str | None, command: list[str]) -> RunDirectory:
        """A new run's directory; refuses one that holds a run already (never appends)."""
        run = cls(Path(path))
        run.refuse_existing()
        run.path.mkdir(parents=True, exist_ok=True)
        if config_text is not None:
            _write_atomic(run.path / CONFIG_FILE, config_text)
        info = {"created": _now(), "versions": versions(), "sessions": []}
        _write_atomic(run.path / RUN_FILE, json.dumps(info, indent=2) + "\n")
        run.add_session(command, checkpoint=None)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDirectory:
        """An existing run's directory, to resume."""
        run = cls(Path(path))
        if not (run.path / RUN_FILE).is_file():
            raise RunDirectoryError(f"{run.path} is not a run directory (it has no {RUN_FILE})")
        return run

    def refuse_existing(self) -> None:
        """A new run never writes over, or appends to, an old one."""
        if self.exists():
            raise RunDirectoryError(
                f"{self.path} already holds a run: resume it with --resume {self.path}, or "
                "choose another --run-dir"
            )

    def exists(self) -> bool:
        return any((self.path / name).exists() for name in (RUN_FILE, GAMES_FILE, CHECKPOINTS))

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def games_csv(self) -> Path:
        return self.path / GAMES_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    # ----- run.json --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return json.loads((self.path / RUN_FILE).read_text())

    def add_session(self, command: list[str], checkpoint: Path | None) -> None:
        """Record a session (the first, or a resume from ``checkpoint``)."""
        info = self.info()
        info["sessions"].append(
            {
                "started": _now(),
                "command": command,
                "pid": os.getpid(),
                "host": platform.node(),
                "resumed_from": str(checkpoint) if checkpoint else None,
                "versions": versions(),
            }
        )
        _write_atomic(self.path / RUN_FILE, json.dumps(info, indent=2) + "\n")

    def write_learner_address(self, address: str) -> None:
        _write_atomic(
            self.path / LEARNER_FILE,
            json.dumps({"address": address, "pid": os.getpid(), "started": _now()}) + "\n",
        )

    def clear_learner_address(self) -> None:
        (self.path / LEARNER_FILE).unlink(missing_ok=True)

    # ----- checkpoints -----------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        latest = self.path / CHECKPOINTS / LATEST
        if not latest.is_file():
            return None
        path = self.path / CHECKPOINTS / latest.read_text().strip()
        if not path.is_dir():  # (never silently start again from nothing)
            raise RunDirectoryError(f"{latest} names {path.name}, which is not there")
        return path

    def staging_checkpoint(self) -> Path:
        """A temporary directory to write a checkpoint into (see ``commit_checkpoint``)."""
        root = self.path / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".staging-{os.getpid()}-{time.time_ns()}.partial"
        staging.mkdir()
        return staging

    def commit_checkpoint(self, staging: Path, games: int, keep: int) -> Path:
        """Make a fully written checkpoint the latest; keep only the newest ``keep``."""
        root = staging.parent
        final = root / f"games-{games:09d}-{time.time_ns() // 1_000_000}"
        os.replace(staging, final)
        _write_atomic(root / LATEST, final.name + "\n")
        complete = sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] != ".")
        for old in complete[:-keep]:
            if old != final:  # (a stale newer one, left by a kill, never costs this one)
                shutil.rmtree(old, ignore_errors=True)
        for partial in root.glob(".*.partial"):  # (left by a learner killed mid-save)
            if partial != staging:
                shutil.rmtree(partial, ignore_errors=True)
        return final

    # ----- games.csv -------------------------------------------------------------------------
    def keep_games(self, games: int) -> int:
        """Keep the first ``games`` games of games.csv (those a resumed checkpoint holds):
        a learner killed after its checkpoint logged games the resumed run plays again.
        Returns how many rows were dropped."""
        path = self.games_csv
        if not path.exists():
            return 0
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return 0
        header, body = rows[0], rows[1:]
        kept = [row for row in body if row and int(row[0]) < games]
        if len(kept) != games:
            raise RunDirectoryError(
                f"{path} holds {len(kept)} of the {games} games the checkpoint counts"
            )
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            csv.writer(f).writerows([header, *kept])
        os.replace(tmp, path)
        return len(body) - len(kept)


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
