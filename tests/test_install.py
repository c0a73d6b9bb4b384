"""scripts/install.sh: one install stamp that scripts/synth.sh and scripts/test.sh share.

Runs the real scripts in a copy of the project whose package tools (pipenv, npm, npx) are small
recorders on PATH: what is under test is the scripts' decision to install, not the tools. Each
recorder logs its arguments; `pipenv install` and `npm ci` create what the real ones would leave
(.venv/bin/python, node_modules/.bin/cdktf and node, node_modules/.package-lock.json), so the scripts see a real layout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

RECORDER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$INSTALL_LOG"
case "$(basename "$0") $1" in
  "pipenv --version") echo "pipenv, version 2026.10.3" ;;
  "pipenv install") mkdir -p .venv/bin && touch .venv/bin/python && chmod +x .venv/bin/python ;;
  "npm ci") mkdir -p node_modules/.bin && for t in cdktf node; do printf '#!/bin/sh\\n' > node_modules/.bin/$t; chmod +x node_modules/.bin/$t; done
              cp package-lock.json node_modules/.package-lock.json ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("install.sh", "synth.sh", "test.sh"):
        shutil.copy2(ROOT / "scripts" / name, root / "scripts" / name)
    for name in ("Pipfile", "package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, root / name)
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("pipenv", "npm", "npx"):
        (tools / tool).write_text(RECORDER)
        (tools / tool).chmod(0o755)
    return root


def _run(project: Path, script: str, *args: str) -> list[str]:
    """Run ``scripts/<script>`` in ``project``; the install steps the tools saw (runs excluded)."""
    log = project.parent / "install.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{project.parent / 'tools'}:{os.environ['PATH']}", "INSTALL_LOG": str(log)}
    proc = subprocess.run(["bash", f"scripts/{script}", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    steps = {"npm ci": "npm ci", "pipenv install": "pipenv install", "pipenv run pip install": "helm layer"}
    found = []
    for line in log.read_text().splitlines():
        for prefix, step in steps.items():
            if line.startswith(prefix):
                found.append(step + (" --dev" if step == "pipenv install" and "--dev" in line.split() else ""))
    return sorted(found)


def test_a_second_run_of_either_script_installs_nothing(project):
    assert _run(project, "synth.sh") == ["npm ci", "pipenv install"]
    assert _run(project, "synth.sh") == []
    # the test tools on top, once; the CLI is not reinstalled
    assert _run(project, "test.sh") == ["helm layer", "pipenv install --dev"]
    for script in ("test.sh", "synth.sh", "test.sh", "synth.sh"):
        assert _run(project, script) == [], f"{script} reinstalled after the other script ran"


def test_a_changed_pin_file_reinstalls_only_its_side(project):
    _run(project, "test.sh")
    with (project / "Pipfile").open("a") as f:
        f.write("\n# a pin moved\n")
    assert _run(project, "test.sh") == ["helm layer", "pipenv install --dev"]
    (project / "package-lock.json").write_text((project / "package-lock.json").read_text() + "\n")
    assert _run(project, "synth.sh") == ["npm ci"]
    shutil.rmtree(project / "node_modules")
    assert _run(project, "synth.sh") == ["npm ci"]


def test_check_mode_names_what_is_missing_and_installs_nothing(project):
    log = project.parent / "install.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{project.parent / 'tools'}:{os.environ['PATH']}", "INSTALL_LOG": str(log)}
    check = ["bash", "scripts/install.sh", "--dev", "--check"]
    proc = subprocess.run(check, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ("install needed: the cdktf CLI (npm ci) the Python packages "
                                                    "(pipenv install); run scripts/install.sh --dev\n")
    assert "npm ci" not in log.read_text() and "pipenv install" not in log.read_text()
    _run(project, "test.sh")
    assert subprocess.run(check, cwd=project, env=env, capture_output=True, timeout=60).returncode == 0


def test_synth_sh_refuses_more_than_one_environment(project):
    proc = subprocess.run(["bash", "scripts/synth.sh", "dev", "prod"], cwd=project, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "error: scripts/synth.sh takes at most one environment name, got 2: dev prod\n"
