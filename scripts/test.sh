#!/usr/bin/env bash
# Fresh machine -> every rung of the test ladder: unit tests on the synthesized JSON, config errors,
# terraform validate, the cdktf CLI on each Node line, security and IAM scans, and end-to-end applies
# against an AWS emulator.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not emulator and not scan"` for the fast tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
export CHECKPOINT_DISABLE=1 PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1
exec pipenv run python -m pytest "$@"
