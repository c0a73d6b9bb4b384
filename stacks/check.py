"""The fast configuration check: validate environment files without synthesizing anything.

    python -m stacks.check              # every file in stacks/environments/
    python -m stacks.check dev          # one environment (or state-bootstrap: every file)
    PLATFORM_CONFIG_DIR=dir python -m stacks.check

Loads only the config models (model/, stacks/config.py): no provider bindings, no jsii, no node,
so it answers in a fraction of a second. Prints ``ok: dev, prod`` (and any support warning) and
exits 0, or prints one ``error:`` line per problem and exits 2. scripts/synth.sh runs it before the
cdktf CLI, so a config mistake prints once, here, and nothing is synthesized.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stacks.config import ENVIRONMENTS_DIR, ConfigError, StackConfig, load_environments, support_warning


def validated(names: list[str], directory: Path) -> dict[str, StackConfig] | None:
    """The configs of ``names`` (every environment when empty) in ``directory``, with any support
    warning printed; None after printing one ``error:`` line per problem (main.py uses it too)."""
    try:
        configs = load_environments(names, directory)
    except ConfigError as exc:
        print("\n".join(f"error: {line}" for line in str(exc).splitlines()), file=sys.stderr)
        return None
    for config in configs.values():
        warning = support_warning(config)
        if warning:
            print(warning, file=sys.stderr)
    return configs


def check(names: list[str], directory: Path) -> int:
    """Print the verdict on ``names`` in ``directory``; the exit code (0 valid, 2 not)."""
    configs = validated(names, directory)
    if configs is None:
        return 2
    print(f"ok: {', '.join(configs)}")
    return 0


if __name__ == "__main__":
    config_dir = os.environ.get("PLATFORM_CONFIG_DIR")
    sys.exit(check(sys.argv[1:], Path(config_dir) if config_dir else ENVIRONMENTS_DIR))
