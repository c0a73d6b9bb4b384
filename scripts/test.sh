#!/usr/bin/env bash
# Fresh machine -> every rung of the test ladder: unit tests on the synthesized JSON, config errors,
# terraform validate, security and IAM scans, and end-to-end applies against an AWS emulator.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not emulator and not scan"` for the fast tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
export CHECKPOINT_DISABLE=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
exec pipenv run python -m pytest "$@"
