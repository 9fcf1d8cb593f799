"""``python -m flare``: the ``flare`` command.

``python -m`` puts the working directory first on ``sys.path``, so a file there named like
a module the server imports later (from a client's session config, say) would run in it.
That entry goes before anything else is imported. ``flare serve MODULE:FACTORY`` still
finds a module in the working directory: ``load_factory`` searches it for that import only.
"""

import os
import sys


def _working_directory() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # (a working directory removed since)
        return None


if not sys.flags.safe_path and sys.path and sys.path[0] in ("", _working_directory()):
    del sys.path[0]

from flare.cli import main  # noqa: E402 - after the working directory left sys.path

sys.exit(main())
