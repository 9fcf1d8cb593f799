"""A config's run with nothing around it: no progress line, TensorBoard or checkpoints.

Benchmarks time such runs and tests inspect them; both need the run exactly as
``flare train`` builds it, without the output and files a user's run keeps.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flare.learner.build import build_run
from flare.learner.config import RunConfig
from flare.learner.environments import open_env_source
from flare.learner.learner import Learner, LearnerSettings
from flare.learner.run_dir import RunDirectory

QUIET = LearnerSettings(progress="off", tensorboard=False, checkpoint_every_s=0)


@contextmanager
def quiet_run(
    config: RunConfig,
    run_path: Path,
    base_dir: Path,
    settings: LearnerSettings = QUIET,
) -> Iterator[Learner]:
    """The learner of ``config``'s run, ready to ``run()``, its run directory at
    ``run_path``; relative paths in the config are from ``base_dir``. The simulators the
    config starts live as long as the block."""
    with open_env_source(config.env, config.seed, base_dir) as source:
        manager, spec = build_run(config, source)
        run_dir = RunDirectory.create(run_path, None, sys.argv)
        yield Learner(manager, run_dir, settings, env_spec=spec)
