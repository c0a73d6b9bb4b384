#!/usr/bin/env python
"""CDKTF app: one PlatformStack per environment file in stacks/environments/ (dev, prod, ...).

    python main.py                 # synthesize every environment into cdktf.out/
    PLATFORM_ENVIRONMENTS=dev ...  # only these (comma-separated)

Every configuration file is validated before anything is synthesized: a bad value prints one line
per problem (file, field, value, fix) and exits 2 with no traceback and no cdktf.out written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Environment variables are read here, at the top, and nowhere else in the app
# (stacks/bootstrap.py's PLATFORM_FAST_IMPORTS switch aside).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # jsii's Node 20 banner
os.environ.setdefault("CHECKPOINT_DISABLE", "1")
ENVIRONMENTS = [e.strip() for e in os.environ.get("PLATFORM_ENVIRONMENTS", "").split(",") if e.strip()]
CONFIG_DIR = os.environ.get("PLATFORM_CONFIG_DIR")


def main() -> int:
    from stacks.config import ENVIRONMENTS_DIR, ConfigError, environment_files, load_config, support_warning

    files = environment_files(Path(CONFIG_DIR) if CONFIG_DIR else ENVIRONMENTS_DIR)
    unknown = [e for e in ENVIRONMENTS if e not in files]
    if unknown:
        print(f"error: PLATFORM_ENVIRONMENTS names {', '.join(unknown)}, but only {', '.join(files) or 'none'} exist "
              f"as stacks/environments/<name>.yaml", file=sys.stderr)
        return 2
    if not files:
        print("error: no environment files (stacks/environments/*.yaml); add one, e.g. dev.yaml", file=sys.stderr)
        return 2

    configs, errors = {}, []
    for env, path in files.items():
        if ENVIRONMENTS and env not in ENVIRONMENTS:
            continue
        try:
            configs[env] = load_config(path)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        print("\n".join(f"error: {line}" for e in errors for line in e.splitlines()), file=sys.stderr)
        return 2
    for config in configs.values():
        warning = support_warning(config)
        if warning:
            print(warning, file=sys.stderr)

    from stacks.platform import build_app  # the provider bindings load only once config is valid

    build_app(configs).synth()  # outdir: cdktf.out, or CDKTF_OUTDIR when the cdktf CLI runs us
    return 0


if __name__ == "__main__":
    sys.exit(main())
