#!/usr/bin/env bash
# Fresh machine -> Terraform JSON in cdktf.out/stacks/<stack>/cdk.tf.json.
#   scripts/synth.sh            every environment in stacks/environments/ plus state-bootstrap
#   scripts/synth.sh <env>      that environment only, plus state-bootstrap (from every file: one per account);
#                               the other environments' output stays (stacks/output.py). <env> is the
#                               file's name (dev for dev.yaml); a cluster name (name:) is explained
#   scripts/synth.sh state-bootstrap   only the state bucket stack, for every environment's bucket
# The configuration is checked first (python -m stacks.check, well under a second): a mistake
# prints once, one line per problem, and nothing is synthesized.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 1 ]; then
  echo "error: scripts/synth.sh takes at most one environment name, got $#: $*" >&2
  exit 2
fi
scripts/install.sh
export CHECKPOINT_DISABLE=1 PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1
pipenv run python -m stacks.check "$@"
# npx puts node_modules/.bin first on PATH: the CLI and the app's jsii kernel run on the pinned Node.
PLATFORM_ENVIRONMENTS="${1:-}" exec npx --no-install cdktf synth
