"""Fast provider imports (stacks/bootstrap.py ``register_provider_packages``) change speed, nothing else.

* Equivalence: every environment and test variant is synthesized both ways by the same worker
  (tests/synth_worker.py) -- fast path (the session ``synth`` fixture) and the normal import
  (``PLATFORM_FAST_IMPORTS=0``) -- and every file of the two outputs must be identical. The
  normal-import worker pays the full provider import (~20 s, ~1.5 GB), so that test is marked
  ``scan`` (the slow rung), which keeps it out of the fast unit-test run.
* Each path really ran (the worker reports what its import machinery did): on the fast path the
  provider packages are the bare registered modules (only the aws submodules the stack uses are
  loaded); on the normal path the packages' own ``__init__`` ran and imported every submodule.
* Fallback: a package with an unexpected layout is left to the normal import, and
  ``PLATFORM_FAST_IMPORTS=0`` registers nothing.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stacks import bootstrap
from tests.conftest import SynthWorker

AWS = "cdktf_cdktf_provider_aws"


def _submodules_on_disk(package: str) -> set[str]:
    """The submodule packages a provider's generated ``__init__`` imports (every one but ``_jsii``)."""
    spec = importlib.machinery.PathFinder.find_spec(package)  # the installed package, not sys.modules
    root = Path(next(iter(spec.submodule_search_locations)))
    return {p.name for p in root.iterdir() if (p / "__init__.py").is_file() and p.name != "_jsii"}


def _files(outdir: Path) -> dict[str, Path]:
    return {str(p.relative_to(outdir)): p for p in sorted(outdir.rglob("*")) if p.is_file()}


def _json_diff(a, b, path: str = "$", limit: int = 12) -> list[str]:
    """Up to ``limit`` human-readable differences between two JSON documents."""
    out: list[str] = []

    def walk(x, y, p):
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                if k not in x or k not in y:
                    out.append(f"{p}.{k}: only in {'fast' if k in x else 'normal'}")
                else:
                    walk(x[k], y[k], f"{p}.{k}")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{p}[{i}]")
        elif x != y:
            out.append(f"{p}: fast={json.dumps(x)[:120]} normal={json.dumps(y)[:120]}")

    walk(a, b, path)
    return out


# ----------------------------------------------------------------------------- normal import, second worker


@pytest.fixture(scope="module")
def normal_synth() -> Iterator[tuple[Path, dict]]:
    """Every variant synthesized with ``PLATFORM_FAST_IMPORTS=0`` by a second synth worker."""
    worker = SynthWorker(env={**os.environ, bootstrap.SWITCH: "0"})
    try:
        worker.wait()
    except RuntimeError as exc:
        pytest.fail(f"normal-import synth: {exc}", pytrace=False)
    yield worker.outdir, json.loads(worker.report_path.read_text())
    worker.remove()


@pytest.mark.scan
def test_every_stack_synthesizes_identically_both_ways(synth, normal_synth):
    # Nothing is stripped before comparing: the synthesized files carry no volatile metadata. The
    # "//" block of cdk.tf.json holds only the backend type, stackName, cdktf version, override
    # names and output names; manifest.json and metadata.json use paths relative to the output
    # directory; there are no timestamps. So the two output trees (different temp directories,
    # different processes) must be byte-identical, as stacks/bootstrap.py promises. If cdktf ever adds
    # a volatile field, strip exactly that field here and say why.
    fast_dir, (normal_dir, _) = synth.outdir, normal_synth
    fast, normal = _files(fast_dir), _files(normal_dir)
    assert set(fast) == set(normal), (
        f"different files: fast only {sorted(set(fast) - set(normal))}, normal only {sorted(set(normal) - set(fast))}")
    stacks = sorted(Path(f).parent.name for f in fast if f.endswith("cdk.tf.json"))
    assert set(stacks) >= {"dev", "prod"}, stacks
    problems = []
    for rel in fast:
        a, b = fast[rel].read_bytes(), normal[rel].read_bytes()
        if a == b:
            continue
        if rel.endswith(".json"):
            diffs = _json_diff(json.loads(a), json.loads(b))
            problems.append(f"{rel}: " + ("; ".join(diffs) if diffs else "same JSON, different bytes (key order/format)"))
        else:
            problems.append(f"{rel}: bytes differ")
    assert not problems, "fast and normal imports synthesize different output:\n" + "\n".join(problems)
    print(f"identical both ways: {len(stacks)} stacks ({', '.join(stacks)}), {len(fast)} files")


@pytest.mark.scan
def test_normal_import_ran_in_the_worker(normal_synth):
    _, report = normal_synth
    assert report["fast_imports"] is False
    for name in bootstrap.PROVIDER_PACKAGES:
        info = report["packages"][name]
        assert info["imported"] and info["ran_init"], f"{name}: the package's own __init__ did not run: {info}"
        missing = _submodules_on_disk(name) - set(info["submodules"])
        assert not missing, f"{name}: the normal import left {len(missing)} submodules unimported, e.g. {sorted(missing)[:5]}"
    aws = len(_submodules_on_disk(AWS) & set(report["packages"][AWS]["submodules"]))
    assert aws > 2000, f"normal import loaded only {aws} aws submodules"
    print(f"normal import: {aws} aws submodules loaded (all of them)")


# ----------------------------------------------------------------------------- fast path, session worker


def test_fast_path_ran_in_the_synth_worker(synth):
    if not bootstrap.switched_on():
        pytest.skip(f"{bootstrap.SWITCH} is off in this session")
    report = synth.report
    assert report["fast_imports"] is True
    for name in bootstrap.PROVIDER_PACKAGES:
        info = report["packages"][name]
        assert info["imported"], f"{name} was never registered or imported"
        assert not info["ran_init"], f"{name}: its __init__ ran: the fast path did not apply"
    used, available = set(report["packages"][AWS]["submodules"]) - {"_jsii"}, _submodules_on_disk(AWS)
    assert used, "the stacks use no aws submodule?"
    assert used <= available
    assert len(used) < 200, f"{len(used)} of {len(available)} aws submodules imported: more than the stack uses"
    print(f"fast path: {len(used)} of {len(available)} aws submodules imported")


# ----------------------------------------------------------------------------- fallback


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``tmp_path`` on sys.path; every module created there is dropped from sys.modules afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(bootstrap.SWITCH, raising=False)
    names: list[str] = []
    yield tmp_path, names
    for key in [k for k in sys.modules if any(k == n or k.startswith(n + ".") for n in names)]:
        del sys.modules[key]


GENERATED_INIT = """\
INIT_RAN = True
__all__ = ["INIT_RAN", "thing"]
from ._jsii import *
from . import thing
import publication
publication.publish()
"""


def _fake(root: Path, names: list[str], layout: str) -> str:
    """A fake provider package named uniquely, laid out as ``layout``."""
    name = f"fakeprovider_{layout}_{uuid.uuid4().hex[:8]}"
    names.append(name)
    pkg = root / name
    if layout == "module":  # a plain module, not a package
        (root / f"{name}.py").write_text("INIT_RAN = True\n")
        return name
    if layout == "missing":  # not installed at all
        return name
    pkg.mkdir()
    (pkg / "thing").mkdir()
    (pkg / "thing" / "__init__.py").write_text("VALUE = 42\n")
    if layout != "no_jsii":
        (pkg / "_jsii").mkdir()
        (pkg / "_jsii" / "__init__.py").write_text('__jsii_assembly__ = "fake"\n__all__ = ["__jsii_assembly__"]\n')
    if layout in ("expected", "no_jsii"):
        # no_jsii: same generated text (in a comment, since there is no _jsii to import); only the folder is missing
        init = GENERATED_INIT if layout == "expected" else "INIT_RAN = True\n# " + GENERATED_INIT.replace("\n", "\n# ")
    else:  # handwritten: an __init__ that is not a generated jsii binding (does its own work)
        init = "INIT_RAN = True\n__all__ = ['thing']\nfrom . import thing\n"
    (pkg / "__init__.py").write_text(init)
    return name


def test_expected_layout_is_registered_without_running_init(fake_root):
    """Positive control for the fallback tests: the fake generated package takes the fast path."""
    root, names = fake_root
    name = _fake(root, names, "expected")
    assert bootstrap.register_provider_packages((name,)) == [name]
    module = sys.modules[name]
    assert not hasattr(module, "INIT_RAN") and not hasattr(module, "__all__")
    assert importlib.import_module(f"{name}.thing").VALUE == 42
    assert not hasattr(sys.modules[name], "INIT_RAN"), "importing a submodule ran the package __init__"
    assert f"{name}._jsii" not in sys.modules
    assert bootstrap.register_provider_packages((name,)) == [], "a second call must leave the registered module alone"


@pytest.mark.parametrize("layout", ["no_jsii", "handwritten", "module"])
def test_unexpected_layout_is_left_to_the_normal_import(fake_root, layout):
    root, names = fake_root
    name = _fake(root, names, layout)
    assert bootstrap.register_provider_packages((name,)) == []
    assert name not in sys.modules
    module = importlib.import_module(name)
    assert module.INIT_RAN is True, "the normal import (the package's own __init__) must apply"


def test_missing_package_is_skipped(fake_root):
    root, names = fake_root
    name = _fake(root, names, "missing")
    assert bootstrap.register_provider_packages((name,)) == []
    assert name not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


@pytest.mark.parametrize("value", ["0", "off"])
def test_switch_off_registers_nothing(fake_root, monkeypatch, value):
    root, names = fake_root
    name = _fake(root, names, "expected")
    monkeypatch.setenv(bootstrap.SWITCH, value)
    assert bootstrap.register_provider_packages((name,)) == []
    assert name not in sys.modules
    assert importlib.import_module(name).INIT_RAN is True


@pytest.mark.parametrize("switch", ["1", "0"])
def test_installed_providers_take_the_fast_path_unless_switched_off(monkeypatch, switch):
    """The real provider packages still have the layout the fast path expects (a provider upgrade
    that changes it would silently make synth slow again), and the switch turns it off for them."""
    for name in bootstrap.PROVIDER_PACKAGES:
        monkeypatch.delitem(sys.modules, name, raising=False)  # restored after the test
    monkeypatch.setenv(bootstrap.SWITCH, switch)
    registered = bootstrap.register_provider_packages()
    if switch == "0":
        assert registered == []
        assert not any(name in sys.modules for name in bootstrap.PROVIDER_PACKAGES)
    else:
        assert registered == list(bootstrap.PROVIDER_PACKAGES)
        for name in registered:
            assert not hasattr(sys.modules[name], "__all__")
            assert sys.modules[name].__path__ == list(
                importlib.machinery.PathFinder.find_spec(name).submodule_search_locations)
    for name in bootstrap.PROVIDER_PACKAGES:  # monkeypatch restores the session's modules
        sys.modules.pop(name, None)
