"""Shared fixtures. The stacks are synthesized once per test session (jsii loads each provider's
bindings whole: synthesizing per test would cost seconds each), then tests assert on the JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CHECKPOINT_DISABLE", "1")

from stacks import bootstrap  # noqa: E402

bootstrap.prepare()  # attach constructs/ and register the fast provider imports before any test imports them
from tests import progress  # noqa: E402
from tests.variants import VARIANTS, variant_configs  # noqa: E402

pytest_plugins = ["tests.emulator.server"]  # the `emulator` session fixture, for every module


def pytest_configure(config: pytest.Config) -> None:
    progress.install(config)


class Synth:
    """The synthesized ``cdk.tf.json`` of every environment and test variant."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self._cache: dict[str, dict] = {}

    def path(self, stack: str) -> Path:
        return self.outdir / "stacks" / stack / "cdk.tf.json"

    def __getitem__(self, stack: str) -> dict:
        if stack not in self._cache:
            self._cache[stack] = json.loads(self.path(stack).read_text())
        return self._cache[stack]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from stacks.platform import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(variant_configs(), str(outdir)).synth()
    return Synth(outdir)


@pytest.fixture(scope="session", params=["dev", "prod"])
def env_json(request: pytest.FixtureRequest, synth: Synth) -> dict:
    return synth[request.param]


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



__all__ = ["ROOT", "VARIANTS", "Synth", "conditions", "one", "policy_statements", "ref_id", "resources"]


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
