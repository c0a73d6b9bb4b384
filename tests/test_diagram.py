"""The stack diagrams: an overview of the layers (kinds and counts) and the full graph, rendered by Graphviz;
the committed pictures in docs/ must show the current synth."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from stacks.diagram import graph, main, overview
from tests.conftest import ROOT, resources

SVG = "{http://www.w3.org/2000/svg}"
REGENERATE = "pipenv run python main.py && pipenv run python -m stacks.diagram dev"


def _edges(source: str) -> set[tuple[str, str]]:
    out = set()
    for line in source.splitlines():
        if "->" in line:
            left, right = line.strip().split(" -> ")
            out.add((left.strip('"'), right.split(" [")[0].strip().strip('"')))
    return out


def svg_structure(text: str) -> dict:
    """What a rendered SVG shows, independent of the layout: node names with their text lines, edges with their
    label (Graphviz writes each node's and edge's DOT name into its <title>)."""
    root = ET.fromstring(text)
    nodes, edges = {}, {}
    for group in root.iter(f"{SVG}g"):
        kind, title = group.get("class"), group.findtext(f"{SVG}title")
        texts = [t.text or "" for t in group.iter(f"{SVG}text")]
        if kind == "node":
            nodes[title] = texts
        elif kind == "edge":
            edges[title] = " ".join(texts)
    return {"nodes": nodes, "edges": edges}


def test_every_resource_is_a_node_in_its_layer(synth):
    doc = synth["dev"]
    source = graph(doc, "dev").dot.source
    for layer in ("network", "iam", "cluster", "karpenter"):
        assert f"subgraph cluster_{layer}" in source
    for rtype, items in doc["resource"].items():
        for name in items:
            assert f'"{rtype}.{name}"' in source


def test_references_become_edges_and_policy_documents_are_folded(synth):
    doc = synth["dev"]
    edges = _edges(graph(doc, "dev").dot.source)
    nat = next(iter(resources(doc, "aws_nat_gateway")))
    public_a = [k for k in resources(doc, "aws_subnet") if "public-us-west-2a" in k][0]
    assert (f"aws_nat_gateway.{nat}", f"aws_subnet.{public_a}") in edges
    release = [k for k in resources(doc, "helm_release") if "karpenter_release" in k][0]
    group = next(iter(resources(doc, "aws_eks_node_group")))
    assert (f"helm_release.{release}", f"aws_eks_node_group.{group}") in edges
    # the interruption policy's document is folded: the policy points straight at the queue
    policy = next(k for k in resources(doc, "aws_iam_policy") if "InterruptionPolicy" in k)
    queue = next(iter(resources(doc, "aws_sqs_queue")))
    assert (f"aws_iam_policy.{policy}", f"aws_sqs_queue.{queue}") in edges
    assert not any("aws_iam_policy_document" in a or "aws_iam_policy_document" in b for a, b in edges)
    assert ("provider.helm", f"aws_eks_cluster.{next(iter(resources(doc, 'aws_eks_cluster')))}") in edges


def test_overview_counts_every_resource_kind_once_per_layer(synth):
    doc = synth["dev"]
    nodes = overview(doc, "dev").structure()["nodes"]
    subnets = len(resources(doc, "aws_subnet"))
    assert f"{subnets} × aws_subnet" in nodes["network"] and subnets == 6
    assert "5 × aws_cloudwatch_event_rule" in nodes["karpenter"]
    listed = sum(int(line.split(" × ")[0]) for lines in nodes.values() for line in lines
                 if " × " in line and not line.startswith("reads "))
    assert listed == sum(len(items) for items in doc["resource"].values())
    assert nodes["network"][0] == "network: 30 resources (constructs/network.py)"


def test_overview_of_an_existing_network_says_what_the_network_layer_reads(synth):
    nodes = overview(synth["t-shared-vpc"], "").structure()["nodes"]
    assert nodes["network"][0] == "network: 2 resources (constructs/network.py)"
    assert {"reads 1 × aws_vpc", "reads 3 × aws_subnet", "reads 4 × aws_route_table"} <= set(nodes["network"])
    assert "+ 1 data sources (reads)" not in nodes["network"]


def test_overview_reads_at_page_width():
    """GitHub shows a README image at most ~880 px wide; at that width the smallest text stays >= 8 pt (11 px)."""
    svg = (ROOT / "docs" / "diagram-dev-overview.svg").read_text()
    root = ET.fromstring(svg)
    width_px = float(root.get("width").removesuffix("pt")) * 4 / 3
    assert width_px <= 880, f"the overview is {width_px:.0f} px wide"
    scale = float(re.search(r"scale\(([0-9.]+)", svg).group(1))
    smallest = min(float(t.get("font-size")) for t in root.iter(f"{SVG}text")) * scale
    assert smallest >= 8, f"its smallest text is {smallest:.1f} pt"


@pytest.mark.parametrize("picture", ["diagram-dev-overview.svg", "diagram-dev.svg", "diagram-shared-vpc-overview.svg"])
def test_committed_diagram_shows_the_current_synth(synth, picture):
    """Same nodes, labels and edges as the current synth would draw, whatever Graphviz laid them out with."""
    doc = synth["t-shared-vpc" if "shared-vpc" in picture else "dev"]
    drawing = (overview if "overview" in picture else graph)(doc, "")
    committed = svg_structure((ROOT / "docs" / picture).read_text())
    expected = drawing.structure()
    missing = sorted(set(expected["nodes"]) - set(committed["nodes"]))
    extra = sorted(set(committed["nodes"]) - set(expected["nodes"]))
    assert not missing and not extra, f"docs/{picture} is stale (missing {missing[:5]}, extra {extra[:5]}); run: {REGENERATE}"
    stale = [name for name, lines in expected["nodes"].items() if committed["nodes"][name] != lines]
    assert not stale, f"docs/{picture} is stale ({stale[:5]} differ); run: {REGENERATE}"
    assert committed["edges"] == expected["edges"], f"docs/{picture} has stale edges; run: {REGENERATE}"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed (scripts/install.sh installs it)")
def test_command_renders_an_svg(synth, tmp_path):
    assert main(["dev", "--synth-dir", str(synth.outdir), "--out", str(tmp_path / "dev")]) == 0
    svg = (tmp_path / "dev.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "aws_eks_cluster" in svg
    assert svg_structure((tmp_path / "dev-overview.svg").read_text())["nodes"]["karpenter"]


def test_command_explains_a_missing_synth(tmp_path, capsys):
    assert main(["dev", "--synth-dir", str(tmp_path)]) == 2
    assert "run `scripts/synth.sh`" in capsys.readouterr().err
