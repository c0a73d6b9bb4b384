"""The README is the user's door: short, generated where it can drift, and every name in it exists."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from stacks.cost import END as COST_END, START as COST_START, table
from stacks.docs import ERRORS_END, ERRORS_START, EXAMPLE, SHIPPED, example_errors
from tests.conftest import ROOT

README = ROOT / "README.md"
REGENERATE = "pipenv run python main.py && pipenv run python -m stacks.docs"
MARKERS = ("config-reference", "config-errors", "change-impact", "cost")


def _block(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def _tracked(*patterns: str) -> list:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


REFERENCE_TABLES = ("config-reference", "change-impact")
"""Generated tables a user looks a key up in (one row per key), not reads through: they are not counted."""


def test_user_part_is_under_250_lines():
    text = README.read_text()
    for name in REFERENCE_TABLES:
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        text = text.split(start, 1)[0] + start + text.split(end, 1)[1]
    lines = text.splitlines()
    assert len(lines) < 250, (f"README.md has {len(lines)} lines besides its reference tables ({', '.join(REFERENCE_TABLES)}); "
                              "move contributor material to docs/")


@pytest.mark.parametrize("name", MARKERS)
def test_every_generated_block_has_its_place_once(name):
    text = README.read_text()
    assert text.count(f"<!-- {name}:start -->") == 1 and text.count(f"<!-- {name}:end -->") == 1, name


def test_example_errors_are_what_the_loader_prints():
    assert _block(README.read_text(), ERRORS_START, ERRORS_END) == example_errors(), f"run: {REGENERATE}"


def _priced(synth) -> dict:
    return {**{name: synth[name] for name in SHIPPED}, EXAMPLE: synth["t-shared-vpc"]}


def test_cost_table_is_counted_from_the_current_synth(synth):
    current = table(_priced(synth))
    assert _block(README.read_text(), COST_START, COST_END) == current, f"run: {REGENERATE}"


def test_cost_counts_what_the_stacks_hold(synth):
    """dev: one NAT gateway and its EIP, 1 t3.large; prod: one per AZ (3) and 2 m6i.large; an existing
    network: no NAT gateway, EIP or flow log of ours."""
    text = table(_priced(synth))
    assert "| NAT gateways | $32.85 (1) | $98.55 (3) | — (the network's owner) |" in text
    assert "| public IPv4 (the NAT gateways' EIPs) | $3.65 (1) | $10.95 (3) | — (the network's owner) |" in text
    assert "in `shared-vpc`, an existing network, control-plane logs only" in text
    assert "$60.74 (1 × t3.large)" in text and "$140.16 (2 × m6i.large)" in text
    assert "$73.00 (Kubernetes 1.36, standard support)" in text and "$365.00 more a month" in text


def test_versions_table_names_the_synthesized_provider_pins(synth):
    text = README.read_text()
    for name, pin in synth["dev"]["terraform"]["required_providers"].items():
        assert f"{name} {pin['version']}" in text, f"README's Versions table lacks {name} {pin['version']}"


def test_package_json_names_the_karpenter_it_installs():
    from model.versions import DEFAULT_KARPENTER

    description = json.loads((ROOT / "package.json").read_text())["description"]
    named = re.findall(r"Karpenter (\d+\.\d+\.\d+)", description)
    assert named == [DEFAULT_KARPENTER], description


DOC_FILES = ("README.md", "CONTRIBUTING.md", "docs/*.md", "stacks/environments/*.yaml",
             "stacks/environments/examples/*.yaml", "package.json")
PATH_LIKE = re.compile(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/?)`|\]\(([^)#]+)\)")
SCRIPT = re.compile(r"\.(py|ya?ml|md)$")  # a bare name with these ends is a file (karpenter.sh is a domain)
RUN = re.compile(r"python ([A-Za-z0-9_./-]+\.py)")


def _named_paths(text: str) -> set[str]:
    found = {a or b for a, b in PATH_LIKE.findall(text)} | set(RUN.findall(text))
    return {p for p in found if not p.startswith(("http", "/", "~")) and ("/" in p or SCRIPT.search(p))}


def test_every_file_the_docs_name_exists():
    """A file named in the README, docs/, an environment file's comments or package.json exists (relative
    to the repository or to the naming file): a stale name such as `python bootstrap_state.py` fails here."""
    tracked = [path.relative_to(ROOT).as_posix() for path in _tracked()]
    roots, basenames = {p.split("/")[0] for p in tracked}, {p.rsplit("/", 1)[-1] for p in tracked}
    missing = []
    for path in _tracked(*DOC_FILES):
        for name in _named_paths(path.read_text()):
            top = name.split("/")[0]
            if "/" in name and top not in roots and not (path.parent / name).exists():
                continue  # not a repository path (e.g. aws/ebs, an AWS managed key alias)
            if "/" not in name and name in basenames:
                continue  # a file named by itself, e.g. "copy `dev.yaml`"
            if not ((ROOT / name).exists() or (path.parent / name).exists()):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, missing


README_REF = re.compile(r"README(?::|'s)? ?[\"']?([A-Z][A-Za-z ]+?)[\"')\],]")


def test_every_pointer_to_a_readme_section_finds_it():
    headings = [line[3:] for line in README.read_text().splitlines() if line.startswith("## ")]
    stale = []
    for path in _tracked("*.py", "*.sh", "*.yaml", "*.md", "package.json"):
        for section in README_REF.findall(path.read_text(errors="replace")):
            if not any(h.startswith(section.strip()) for h in headings):
                stale.append(f"{path.relative_to(ROOT)}: README {section!r}")
    assert not stale, f"no such README section: {stale}"
