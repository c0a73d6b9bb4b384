"""Progress lines for the long rungs (terraform phases, resource counts, elapsed time), shown live
on the terminal even while pytest captures test output, so CI is never silent for minutes."""

from __future__ import annotations

import contextlib
import sys

_config = None


def install(config) -> None:
    """Called from tests/conftest.py's pytest_configure with pytest's config."""
    global _config
    _config = config


def progress(message: str) -> None:
    plugins = _config.pluginmanager if _config is not None else None
    reporter = plugins.get_plugin("terminalreporter") if plugins else None
    if reporter is None:
        print(message, file=sys.stderr, flush=True)
        return
    capture = plugins.get_plugin("capturemanager")
    # like pytest's live logging: step around the fd-level capture for one line
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(message)
