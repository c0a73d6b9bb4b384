"""The stack diagram: layers as clusters, resources as nodes, references as edges, rendered by Graphviz."""

from __future__ import annotations

import shutil

import pytest

from stacks.diagram import graph, main
from tests.conftest import resources


def _edges(source: str) -> set[tuple[str, str]]:
    out = set()
    for line in source.splitlines():
        if "->" in line:
            left, right = line.strip().split(" -> ")
            out.add((left.strip('"'), right.split(" [")[0].strip().strip('"')))
    return out


def test_every_resource_is_a_node_in_its_layer(synth):
    doc = synth["dev"]
    source = graph(doc, "dev").source
    for layer in ("network", "iam", "cluster", "karpenter"):
        assert f"subgraph cluster_{layer}" in source
    for rtype, items in doc["resource"].items():
        for name in items:
            assert f'"{rtype}.{name}"' in source


def test_references_become_edges_and_policy_documents_are_folded(synth):
    doc = synth["dev"]
    edges = _edges(graph(doc, "dev").source)
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


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed (scripts/install.sh installs it)")
def test_command_renders_an_svg(synth, tmp_path):
    assert main(["dev", "--synth-dir", str(synth.outdir), "--out", str(tmp_path / "dev")]) == 0
    svg = (tmp_path / "dev.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "aws_eks_cluster" in svg


def test_command_explains_a_missing_synth(tmp_path, capsys):
    assert main(["dev", "--synth-dir", str(tmp_path)]) == 2
    assert "run `scripts/synth.sh`" in capsys.readouterr().err
