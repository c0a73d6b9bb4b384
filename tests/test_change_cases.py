"""The change-impact rung's cases are edits a user would write (issue 23 item 1).

The rung (tests/test_emulator.py, tests/emulator/change_impact.py) plans each case against an applied
environment and writes the README's "What a change does" table from the plans. A case is only
true for users if it is applied to the shipped file exactly as a user writes the edit: nothing
else written into the file (no default pools expanded first), and each case changing only what it
names. These checks need no emulator and no synth.
"""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import parse_config
from tests.emulator.change_impact import CASES
from tests.emulator.synth_variants import changed, emulator_raw
from tests.variants import EMULATOR_ENV

FILE = EMULATOR_ENV / "emulator.yaml"


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted.path: value}`` of every leaf of ``data`` (a mapping's own keys, lists whole)."""
    if not isinstance(data, dict) or not data:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _named(path: str, case) -> bool:
    return any(path == key or path.startswith(f"{key}.") for key in case.changes)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_case_writes_only_the_keys_it_names(case):
    raw = emulator_raw()
    before, after = _leaves(raw), _leaves(changed(raw, case.changes))
    touched = {p for p in {*before, *after} if before.get(p, "<absent>") != after.get(p, "<absent>")}
    assert {p for p in touched if not _named(p, case)} == set()


POOL_CASES = [c for c in CASES if any(k.startswith("karpenter.nodepools.") for k in c.changes)]


@pytest.mark.parametrize("case", POOL_CASES, ids=[c.name for c in POOL_CASES])
def test_a_pool_case_changes_only_the_pools_it_names(case):
    base = parse_config(emulator_raw(), FILE).karpenter.nodepools
    pools = parse_config(changed(emulator_raw(), case.changes), FILE).karpenter.nodepools
    named = {k.split(".")[2] for k in case.changes}
    assert {n: p for n, p in pools.items() if n not in named} == {n: p for n, p in base.items() if n not in named}
    for name in named:
        assert (name in pools) is (case.changes.get(f"karpenter.nodepools.{name}", "kept") is not None)


def test_adding_a_pool_to_the_shipped_file_keeps_the_default_pools():
    case = next(c for c in CASES if c.example == "add a pool")
    pools = parse_config(changed(emulator_raw(), case.changes), FILE).karpenter.nodepools
    assert list(pools) == ["stateful", "stateless", "gpu", "batch"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_case_is_a_file_the_config_accepts(case):
    """A case the config refuses never reaches a plan (the rung's synth fails on it): each is a real edit."""
    parse_config(changed(emulator_raw(), case.changes), FILE)
