#!/usr/bin/env python
"""CDKTF app: one PlatformStack per environment file in stacks/environments/ (dev, prod, ...).

    python main.py                 # synthesize every environment into cdktf.out/
    PLATFORM_ENVIRONMENTS=dev ...  # only these (comma-separated), plus state-bootstrap (built from every file)
    PLATFORM_ENVIRONMENTS=state-bootstrap ...  # only the state bucket stack (every environment's bucket)

Every configuration file is validated before anything is synthesized: a bad value prints one line
per problem (file, field, value, fix) and exits 2 with no traceback and no cdktf.out written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Environment variables are read here, at the top, and nowhere else in the app
# (stacks/bootstrap.py's PLATFORM_FAST_IMPORTS switch aside).
# jsii's kernel runs on the Node the project pins (package-lock.json: node-linux-*, installed as
# node_modules/.bin/node), the same one npx gives the cdktf CLI; where none is installed (not Linux),
# on the machine's `node`. The banner jsii prints on an end-of-life Node 20 is silenced there.
PINNED_NODE = Path(__file__).resolve().parent / "node_modules" / ".bin" / "node"
if PINNED_NODE.exists():
    os.environ.setdefault("JSII_NODE", str(PINNED_NODE))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CHECKPOINT_DISABLE", "1")
# scripts/node-quiet.cjs keeps the jsii kernel's stderr free of warnings that are not errors (the cdktf
# CLI prints the app's stderr as [ERROR] lines); under `npx cdktf` .npmrc has loaded it already.
QUIET_NODE = f"--require={Path(__file__).resolve().parent / 'scripts' / 'node-quiet.cjs'}"
if "node-quiet.cjs" not in os.environ.get("NODE_OPTIONS", ""):
    os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} {QUIET_NODE}".strip()
ENVIRONMENTS = [e.strip() for e in os.environ.get("PLATFORM_ENVIRONMENTS", "").split(",") if e.strip()]
CONFIG_DIR = os.environ.get("PLATFORM_CONFIG_DIR")
OUTDIR = Path(os.environ.get("CDKTF_OUTDIR") or "cdktf.out")  # the cdktf CLI's --output, or App's default
UNDER_CLI = "SYNTH_HCL_OUTPUT" in os.environ  # set by `cdktf synth`, which then deletes unlisted stack folders itself


def main() -> int:
    from stacks.check import validated
    from stacks.config import BOOTSTRAP_STACK, ENVIRONMENTS_DIR, ConfigError, environment_files, load_environments
    from stacks.output import read_manifest, settle

    directory = Path(CONFIG_DIR) if CONFIG_DIR else ENVIRONMENTS_DIR
    configs = validated(ENVIRONMENTS, directory)
    if configs is None:
        return 2

    from stacks.platform import build_app  # the provider bindings load only once config is valid

    # state-bootstrap is one per account: a synth of some environments builds it from every file, or,
    # while another file has errors, leaves its last output as it was (never one that drops their roles)
    account = configs
    if ENVIRONMENTS and ENVIRONMENTS != [BOOTSTRAP_STACK]:
        try:
            account = load_environments((), directory)
        except ConfigError:
            account = {}
            print(f"note: {BOOTSTRAP_STACK} is not rewritten while another environment file has errors "
                  "(python -m stacks.check names them)", file=sys.stderr)

    previous = read_manifest(OUTDIR)
    # outdir: cdktf.out, or CDKTF_OUTDIR when the cdktf CLI runs us
    build_app(configs, bootstrap_only=ENVIRONMENTS == [BOOTSTRAP_STACK], account=account).synth()
    # the other environments keep their output; a deleted environment's is removed (stacks/output.py)
    settle(OUTDIR, previous, {*environment_files(directory), BOOTSTRAP_STACK}, remove=not UNDER_CLI)
    return 0


if __name__ == "__main__":
    sys.exit(main())
