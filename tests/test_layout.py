"""The ``constructs/`` name clash is solved in every way the app is run.

The project's layer folder ``constructs/`` has the name of the library cdktf is built on. Wherever
the app runs, ``from constructs import Construct`` must be the library's (its module file in
site-packages) and every layer file ``constructs/<name>.py`` must import as ``constructs.<name>``:

* in the test session (the synth worker, tests/synth_worker.py, imports with pytest's context);
* under ``python main.py``: a subprocess doing what main.py does before it builds stacks (fast), and
  the real ``python main.py`` (scan rung);
* under the real ``cdktf synth`` (``pipenv run python main.py`` per cdktf.json) and ``cdktf list``,
  offline (scan rung: the cdktf CLI and pipenv cost ~20 s per command).

The two real runs are observed from inside the app's own interpreter by a ``sitecustomize`` probe
put on PYTHONPATH: at exit it records where ``constructs`` and every ``constructs.*`` module came from.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYER_DIR = ROOT / "constructs"
LAYERS = sorted(p.stem for p in LAYER_DIR.glob("*.py"))
LIBRARY_INIT = Path(importlib.metadata.distribution("constructs").locate_file("constructs/__init__.py")).resolve()
ENV = {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CHECKPOINT_DISABLE": "1"}

# Dumps, at interpreter exit, where `constructs` and its submodules came from. Loaded as
# sitecustomize (PYTHONPATH) into every Python the command starts; only main.py's process writes.
PROBE = textwrap.dedent("""
    import atexit, json, os, sys

    def _dump():
        if not sys.argv or not sys.argv[0].endswith("main.py"):
            return
        lib = sys.modules.get("constructs")
        construct = getattr(lib, "Construct", None)
        report = {
            "argv": sys.argv, "executable": sys.executable, "cwd": os.getcwd(),
            "constructs_file": getattr(lib, "__file__", None),
            "constructs_path": list(getattr(lib, "__path__", [])),
            "construct_module": getattr(construct, "__module__", None),
            "modules": {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())
                        if n.startswith("constructs.")},
        }
        with open(os.path.join(os.environ["LAYOUT_PROBE_DIR"], f"probe-{os.getpid()}.json"), "w") as fh:
            json.dump(report, fh)

    atexit.register(_dump)
""")


def _check_report(report: dict, expect_layers: bool) -> None:
    """Assert a probe report shows the library as ``constructs`` and the layers as its submodules."""
    assert report["constructs_file"] and Path(report["constructs_file"]).resolve() == LIBRARY_INIT, report
    assert "site-packages" in Path(report["constructs_file"]).parts
    assert report["construct_module"] == "constructs", report
    assert str(LAYER_DIR) in report["constructs_path"], "constructs/ was not attached to the library's __path__"
    layers = {n.split(".", 1)[1]: f for n, f in report["modules"].items() if n.count(".") == 1 and f
              and Path(f).resolve().parent == LAYER_DIR}
    others = {n: f for n, f in report["modules"].items() if n.count(".") == 1 and n.split(".", 1)[1] in LAYERS
              and (not f or Path(f).resolve() != LAYER_DIR / f"{n.split('.', 1)[1]}.py")}
    assert not others, f"layer names resolved elsewhere: {others}"
    if expect_layers:
        assert layers, "no constructs.<layer> module was imported"


# ----------------------------------------------------------------------------- the test session


def test_layer_folder_has_no_init():
    assert LAYER_DIR.is_dir() and LAYERS, LAYER_DIR
    assert not (LAYER_DIR / "__init__.py").exists(), (
        "constructs/__init__.py would shadow the constructs library (see stacks/bootstrap.py)")


def test_library_and_layers_resolve_in_the_test_session(synth):
    """The session's synth worker imports with pytest's context (the project root first on sys.path,
    where the ``constructs/`` folder sits) and reports what it got."""
    report = synth.report["constructs"]
    assert Path(report["sys_path_0"]).resolve() == ROOT, "the worker must import with the project root first"
    _check_report(report, expect_layers=True)
    assert Path(report["constructs_path"][0]).resolve() == LIBRARY_INIT.parent, "the library's own folder comes first"
    imported = {n.split(".", 1)[1] for n in report["modules"] if n.count(".") == 1}
    assert set(LAYERS) <= imported, f"layers the synth did not import: {sorted(set(LAYERS) - imported)}"


# ----------------------------------------------------------------------------- python main.py


# What main.py does before it builds anything: its own module code (run as a script: sys.path[0] is
# the script's folder), then main()'s imports; stacks.platform starts with bootstrap.prepare(). Layers
# are located with find_spec (the import system's own resolution) rather than executed, which would
# load the provider assemblies (seconds); test_main_py_synthesizes_with_the_layers executes them.
MAIN_PROBE = textwrap.dedent("""
    import importlib.util, json, runpy, sys
    root, main, layers = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    sys.path[0] = root
    sys.argv = [main]
    runpy.run_path(main, run_name="__main_probe__")
    import stacks.config  # main() imports it first
    from stacks import bootstrap
    bootstrap.prepare()
    import constructs
    from constructs import Construct
    print(json.dumps({
        "constructs_file": constructs.__file__, "constructs_path": list(constructs.__path__),
        "construct_module": Construct.__module__,
        "modules": {"constructs." + n: importlib.util.find_spec("constructs." + n).origin for n in layers},
    }))
""")


@pytest.mark.scan  # a subprocess start (~0.5 s); the real `python main.py` test below is in the same rung
def test_main_py_context_resolves_library_and_layers(tmp_path):
    proc = subprocess.run([sys.executable, "-c", MAIN_PROBE, str(ROOT), str(ROOT / "main.py"), ",".join(LAYERS)],
                          cwd=tmp_path, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    _check_report(report, expect_layers=True)
    assert {n.split(".", 1)[1] for n in report["modules"]} == set(LAYERS)


def _probe_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "probe-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PROBE)
    reports = tmp_path / "probe-reports"
    reports.mkdir()
    env = {**os.environ, **ENV, "LAYOUT_PROBE_DIR": str(reports),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return env, reports


def _app_report(reports: Path) -> dict:
    found = [json.loads(p.read_text()) for p in sorted(reports.glob("probe-*.json"))]
    assert len(found) == 1, f"expected one main.py process report, got {len(found)}: {found}"
    return found[0]


def _stack_paths(doc: dict) -> set[str]:
    """Construct paths (``dev/network/vpc``) of every resource in a synthesized stack."""
    return {body.get("//", {}).get("metadata", {}).get("path", "")
            for kind in doc.get("resource", {}).values() for body in kind.values()}


def _check_output(outdir: Path, stacks: tuple[str, ...]) -> None:
    for stack in stacks:
        path = outdir / "stacks" / stack / "cdk.tf.json"
        assert path.is_file(), f"{path} was not written"
        doc = json.loads(path.read_text())
        assert any(p.startswith(f"{stack}/network/") for p in _stack_paths(doc)), f"{stack}: no network layer resources"


def _earlier_output(outdir: Path, synth: dict) -> None:
    """``outdir`` as an earlier synth of every environment left it (prod's stack, marked), plus the
    folder of an environment deleted since (``old-env``)."""
    stacks = {}
    for stack in ("prod", "old-env"):
        folder = outdir / "stacks" / stack
        folder.mkdir(parents=True)
        doc = json.loads(json.dumps(synth["prod"]))
        doc["//"]["metadata"].update(stackName=stack, earlier=stack)
        (folder / "cdk.tf.json").write_text(json.dumps(doc))
        stacks[stack] = {"annotations": [], "constructPath": stack, "dependencies": [], "name": stack,
                         "stackMetadataPath": f"stacks/{stack}/metadata.json",
                         "synthesizedStackPath": f"stacks/{stack}/cdk.tf.json", "workingDirectory": f"stacks/{stack}"}
    (outdir / "manifest.json").write_text(json.dumps({"version": "0.21.0", "stacks": stacks}))


def _check_settled(outdir: Path) -> None:
    """Issue 23 item 5: a synth of dev kept prod's output, removed the deleted environment's, and the
    documentation command finds what it reads."""
    from stacks.docs import synthesized

    manifest = json.loads((outdir / "manifest.json").read_text())
    assert {"dev", "prod", "state-bootstrap"} <= set(manifest["stacks"]) and "old-env" not in manifest["stacks"]
    assert not (outdir / "stacks" / "old-env").exists()
    assert json.loads((outdir / "stacks" / "prod" / "cdk.tf.json").read_text())["//"]["metadata"]["earlier"] == "prod"
    assert set(synthesized(outdir)) == {"dev", "prod"}


def _false_errors(text: str) -> list[str]:
    """Lines a user would read as errors ([ERROR], a Node warning) in a run that succeeded."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return [line for line in plain.splitlines() if "[ERROR]" in line or "Warning:" in line or "[DEP0" in line]


@pytest.mark.scan
def test_main_py_synthesizes_with_the_layers(tmp_path, synth):
    env, reports = _probe_env(tmp_path)
    env.update({"PLATFORM_ENVIRONMENTS": "dev", "CDKTF_OUTDIR": str(tmp_path / "out")})
    env.pop("NODE_OPTIONS", None)
    _earlier_output(tmp_path / "out", synth)
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _app_report(reports)
    _check_report(report, expect_layers=True)
    _check_output(tmp_path / "out", ("dev",))
    _check_settled(tmp_path / "out")
    assert _false_errors(proc.stdout + proc.stderr) == []  # issue 23 item 6: no DEP0044 from the jsii kernel


# ----------------------------------------------------------------------------- cdktf CLI (offline)


def _offline() -> tuple[list[str], dict[str, str], str]:
    """A command prefix (and env) that takes the network away: a fresh network namespace where
    possible, else proxies that refuse every connection."""
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix, {}, f"network namespace ({' '.join(prefix)})"
    dead = "http://127.0.0.1:9"
    return [], {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead, "NO_PROXY": "",
                "no_proxy": ""}, "refusing proxies only (no network namespace available)"


def _cdktf(tmp_path: Path, *args: str, environments: str = "") -> tuple[subprocess.CompletedProcess, Path, str]:
    """``npx cdktf ARGS`` as a user runs it from the project root: offline, without the switches the
    project's scripts export (CHECKPOINT_DISABLE, NODE_OPTIONS), and failing on any line that looks
    like an error in a run that succeeded (issue 23 item 6)."""
    if not (ROOT / "node_modules" / ".bin" / "cdktf").exists():
        pytest.fail("the cdktf CLI is not installed (node_modules/.bin/cdktf): run scripts/install.sh")
    env, reports = _probe_env(tmp_path)
    prefix, extra, how = _offline()
    env.update(extra)
    env.update({"PIPENV_VENV_IN_PROJECT": "1", "PIPENV_NOSPIN": "1", "PIPENV_YES": "1", "CI": "1", "FORCE_COLOR": "0"})
    for var in ("PLATFORM_ENVIRONMENTS", "PLATFORM_CONFIG_DIR", "CDKTF_OUTDIR", "CHECKPOINT_DISABLE", "NODE_OPTIONS"):
        env.pop(var, None)
    if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
        env.pop("TF_CLI_CONFIG_FILE")  # this machine's setting, not the project's: Terraform warns about it
    if environments:
        env["PLATFORM_ENVIRONMENTS"] = environments
    proc = subprocess.run([*prefix, "npx", "--no-install", "cdktf", *args, "--output", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"cdktf {' '.join(args)} failed ({how}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert _false_errors(proc.stdout + proc.stderr) == [], f"cdktf {' '.join(args)} printed false errors"
    print(f"cdktf {' '.join(args)} ran offline: {how}")
    return proc, reports, how


@pytest.mark.scan
def test_cdktf_synth_resolves_library_and_layers(tmp_path):
    _, reports, _ = _cdktf(tmp_path, "synth")
    report = _app_report(reports)
    assert Path(report["argv"][0]).name == "main.py" and Path(report["cwd"]).resolve() == ROOT
    _check_report(report, expect_layers=True)
    _check_output(tmp_path / "out", ("dev", "prod"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {"dev", "prod"} <= set(manifest["stacks"])


@pytest.mark.scan
def test_cdktf_synth_of_one_environment_keeps_the_others(tmp_path, synth):
    """`scripts/synth.sh dev` (PLATFORM_ENVIRONMENTS=dev under the CLI, which deletes every stack folder
    its manifest does not list) keeps prod's output; a deleted environment's folder goes."""
    _earlier_output(tmp_path / "out", synth)
    _cdktf(tmp_path, "synth", environments="dev")
    _check_settled(tmp_path / "out")


def _list_rows(text: str) -> dict[str, str]:
    """``{stack: path}`` from ``cdktf list``'s table; a long path wraps onto indented lines."""
    rows: dict[str, str] = {}
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"\s*Stack name\s+Path\s*$", line)), None)
    if start is None:
        return rows
    name = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        if line[0].isspace() and name:
            rows[name] += line.strip()
        else:
            name, _, path = line.strip().partition(" ")
            rows[name] = path.strip()
    return rows


@pytest.mark.scan
def test_cdktf_list_runs_offline_and_lists_environments(tmp_path):
    proc, _, _ = _cdktf(tmp_path, "list")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stdout)
    rows = _list_rows(text)
    assert {"dev", "prod"} <= set(rows), f"cdktf list printed:\n{text[-2000:]}"
    for stack in ("dev", "prod"):
        assert Path(rows[stack]).resolve() == (tmp_path / "out" / "stacks" / stack).resolve()


def _imports(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_imports_point_one_way():
    """main.py -> stacks/ -> constructs/ -> model/: a layer never reaches back up into stacks/, and
    model/ (config, versions, manifests) loads no provider binding, jsii or cdktf."""
    for path in sorted((ROOT / "constructs").glob("*.py")):
        assert not [m for m in _imports(path) if m == "stacks" or m.startswith("stacks.")], path
    for path in sorted((ROOT / "model").glob("*.py")):
        heavy = [m for m in _imports(path) if m.split(".")[0] in ("stacks", "constructs", "cdktf", "jsii")
                 or m.startswith("cdktf_cdktf_provider")]
        assert not heavy, (path, heavy)


def test_config_loads_without_the_jsii_kernel():
    """Config errors stay instant: loading and validating an environment starts no node process."""
    probe = ("import sys; from stacks.config import load_config; load_config('stacks/environments/dev.yaml'); "
             "from stacks.check import check, ENVIRONMENTS_DIR; assert check([], ENVIRONMENTS_DIR) == 0; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jsii', 'cdktf', 'constructs')))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_config_check_validates_every_environment_in_well_under_a_second():
    """`python -m stacks.check` (README: the config check) as a user runs it, timed from the outside."""
    took = []
    for _ in range(2):  # the better of two: the machine is shared, a stall is not the check's cost
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "stacks.check"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        took.append(time.monotonic() - started)
        assert proc.returncode == 0 and proc.stdout.startswith("ok: "), proc.stderr
    assert min(took) < 1.0, f"{min(took):.2f} s"


@pytest.mark.scan
def test_a_synth_of_one_environment_builds_the_bootstrap_of_every_environment(tmp_path):
    """state-bootstrap is one per account: `scripts/synth.sh dev` must not write a bootstrap without the
    deployer roles of the environments it leaves out (its next deploy would delete them)."""
    envs = tmp_path / "envs"
    envs.mkdir()
    shutil.copy(ROOT / "stacks" / "environments" / "dev.yaml", envs / "dev.yaml")
    shutil.copy(ROOT / "stacks" / "environments" / "examples" / "tfc.yaml", envs / "tfc.yaml")
    env = {**os.environ, "PLATFORM_ENVIRONMENTS": "dev", "PLATFORM_CONFIG_DIR": str(envs),
           "CDKTF_OUTDIR": str(tmp_path / "out")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "out" / "stacks" / "tfc").exists()
    bootstrap = json.loads((tmp_path / "out" / "stacks" / "state-bootstrap" / "cdk.tf.json").read_text())
    roles = [r["name"] for r in bootstrap["resource"].get("aws_iam_role", {}).values()]
    assert "platform-tfc-deployer-tfc" in roles, roles
