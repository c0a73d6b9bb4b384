#!/usr/bin/env bash
# Fresh machine -> cdktf.out/stacks/<env>/cdk.tf.json for every environment in stacks/environments/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export CHECKPOINT_DISABLE=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
exec npx --no-install cdktf synth "$@"
