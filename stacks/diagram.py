"""Draw a synthesized stack: layers as clusters, resources as nodes, references as edges.

    pipenv run python -m stacks.diagram dev            # -> docs/diagram-dev.svg (after a synth)
    pipenv run python -m stacks.diagram dev --format png --out /tmp/dev

Reads ``cdktf.out/stacks/<env>/cdk.tf.json``: the layer of a resource is the construct it was
created in (cdktf's metadata path, e.g. ``dev/network/vpc`` -> network), edges are the
``${type.name...}`` references and ``depends_on`` entries. IAM policy documents are folded into the
resources that use them (their references are kept) so the picture shows infrastructure, not JSON.
Needs Graphviz's ``dot`` (Debian/Ubuntu: ``apt-get install graphviz``; macOS: ``brew install graphviz``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import graphviz

ROOT = Path(__file__).resolve().parent.parent
REF = re.compile(r"\b((?:data\.)?(?:aws|kubernetes|helm)_[a-z0-9_]+\.[A-Za-z0-9_-]+)")
FOLDED = ("data.aws_iam_policy_document.",)
LAYER_COLOURS = {"network": "#e8f1fb", "iam": "#fdf2e0", "cluster": "#e9f7ec", "addons": "#fbf7e0",
                 "karpenter": "#f3e9fa", "stack": "#f2f2f2", "providers": "#fafafa"}


def _elements(doc: dict) -> dict[str, tuple[str, dict]]:
    """``{address: (layer, body)}`` of every resource and data source."""
    out: dict[str, tuple[str, dict]] = {}
    for block, prefix in (("resource", ""), ("data", "data.")):
        for rtype, items in doc.get(block, {}).items():
            for name, body in items.items():
                path = body.get("//", {}).get("metadata", {}).get("path", "")
                parts = path.split("/")
                layer = parts[1] if len(parts) > 2 else "stack"
                out[f"{prefix}{rtype}.{name}"] = (layer, body)
    return out


def _refs(body: object, known: set[str]) -> set[str]:
    text = json.dumps({k: v for k, v in body.items() if k != "//"} if isinstance(body, dict) else body)
    return {m for m in REF.findall(text) if m in known}


def graph(doc: dict, title: str) -> graphviz.Digraph:
    """The Digraph of one synthesized stack."""
    elements = _elements(doc)
    known = set(elements)
    direct = {addr: _refs(body, known) for addr, (_, body) in elements.items()}

    def resolved(addr: str, seen: frozenset = frozenset()) -> set[str]:
        out = set()
        for target in direct[addr]:
            if target.startswith(FOLDED) and target not in seen:
                out |= resolved(target, seen | {target})
            elif not target.startswith(FOLDED):
                out.add(target)
        return out

    dot = graphviz.Digraph(title, graph_attr={"rankdir": "LR", "label": title, "labelloc": "t", "fontsize": "20",
                                              "fontname": "Helvetica", "compound": "true", "newrank": "true"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "white",
                                      "fontname": "Helvetica", "fontsize": "10"},
                           edge_attr={"color": "#888888", "arrowsize": "0.6"})
    by_layer: dict[str, list[str]] = defaultdict(list)
    for addr, (layer, _) in elements.items():
        if not addr.startswith(FOLDED):
            by_layer[layer].append(addr)
    providers = [p for p in ("kubernetes", "helm") if p in doc.get("provider", {})]
    for layer in sorted(by_layer, key=lambda name: list(LAYER_COLOURS).index(name) if name in LAYER_COLOURS else 99):
        with dot.subgraph(name=f"cluster_{layer}") as sub:
            sub.attr(label=layer, style="filled", color="#bbbbbb", fillcolor=LAYER_COLOURS.get(layer, "#ffffff"))
            for addr in sorted(by_layer[layer]):
                rtype, name = addr.removeprefix("data.").split(".", 1)
                short = re.sub(r"_[0-9A-F]{8}$", "", name).split("_", 1)[-1]
                sub.node(addr, f"{rtype}\n{short}", shape="note" if addr.startswith("data.") else "box")
    if providers:
        with dot.subgraph(name="cluster_providers") as sub:
            sub.attr(label="providers", style="dashed")
            for name in providers:
                sub.node(f"provider.{name}", f"provider\n{name}", shape="component")
    for addr in sorted(known):
        if addr.startswith(FOLDED):
            continue
        for target in sorted(resolved(addr)):
            dot.edge(addr, target)
    for name in providers:
        for conf in doc["provider"][name]:
            for target in sorted(_refs(conf, known)):
                dot.edge(f"provider.{name}", target, style="dashed")
        for addr in sorted(a for a in known if a.startswith(f"{name}_")):
            dot.edge(addr, f"provider.{name}", style="dotted", arrowhead="none")
    return dot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environment", help="stack name, e.g. dev")
    parser.add_argument("--synth-dir", default=str(ROOT / "cdktf.out"), help="cdktf output directory")
    parser.add_argument("--format", choices=["svg", "png", "dot"], default="svg")
    parser.add_argument("--out", help="output path without extension (default docs/diagram-<env>)")
    args = parser.parse_args(argv)
    source = Path(args.synth_dir) / "stacks" / args.environment / "cdk.tf.json"
    if not source.is_file():
        print(f"error: {source} does not exist; run `scripts/synth.sh` (or `python main.py`) first", file=sys.stderr)
        return 2
    dot = graph(json.loads(source.read_text()), f"{args.environment}: VPC, EKS, IAM, Karpenter")
    out = Path(args.out) if args.out else ROOT / "docs" / f"diagram-{args.environment}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "dot":
        out.with_suffix(".dot").write_text(dot.source)
        print(out.with_suffix(".dot"))
        return 0
    try:
        written = dot.render(outfile=str(out.with_suffix(f".{args.format}")), cleanup=True)
    except graphviz.ExecutableNotFound:
        print("error: Graphviz's `dot` is not installed (apt-get install graphviz / brew install graphviz)",
              file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
