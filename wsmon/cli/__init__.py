"""The commands, one module a family: ``common`` (the `wsmon` group, exit codes, the flags and helpers
every command shares), ``live`` (demo, attach, check), ``testrun`` (run), ``recordings`` (replay,
report, export, import), ``serve`` (the dashboard in a browser), ``logs`` (logs explain) and ``fleet``
(many nodes in one session). Importing this package registers them all on ``main``, the entry point
(`wsmon = wsmon.cli:main`).
"""

from wsmon.cli import fleet, live, logs, recordings, serve, testrun
from wsmon.cli.common import main

__all__ = ["fleet", "live", "logs", "main", "recordings", "serve", "testrun"]
