"""Draw a synthesized stack: layers as clusters, resources as nodes, references as edges.

    pipenv run python -m stacks.diagram dev            # -> docs/diagram-dev-overview.svg + docs/diagram-dev.svg
    pipenv run python -m stacks.diagram dev --format png --out /tmp/dev

(after a synth). Two pictures: an overview (one box per layer, its resource kinds with counts, the references
between layers) that reads at page width, and the full graph. Reads ``cdktf.out/stacks/<env>/cdk.tf.json``: the layer of a resource is the construct it was
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
from collections import Counter, defaultdict
from pathlib import Path

import graphviz

ROOT = Path(__file__).resolve().parent.parent
REF = re.compile(r"\b((?:data\.)?(?:aws|kubernetes|helm)_[a-z0-9_]+\.[A-Za-z0-9_-]+)")
FOLDED = ("data.aws_iam_policy_document.",)
LAYER_COLOURS = {"network": "#e8f1fb", "iam": "#fdf2e0", "cluster": "#e9f7ec", "addons": "#fbf7e0",
                 "karpenter": "#f3e9fa", "teardown": "#fbeaea", "stack": "#f2f2f2", "providers": "#fafafa"}


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


def _resolved_edges(doc: dict) -> tuple[dict[str, tuple[str, dict]], dict[str, set[str]]]:
    """The elements and, per element, what it references, with policy documents folded into their users."""
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

    return elements, {addr: resolved(addr) for addr in known if not addr.startswith(FOLDED)}


def _layer_order(layer: str) -> int:
    return list(LAYER_COLOURS).index(layer) if layer in LAYER_COLOURS else 99


class Drawing:
    """A Digraph plus what it holds (node labels, edges and their labels), so that a committed picture can be
    compared with the current synth by structure, whatever Graphviz version laid it out."""

    def __init__(self, title: str, **attrs) -> None:
        self.dot = graphviz.Digraph(title, **attrs)
        self.nodes: dict[str, str] = {}
        self.edges: dict[tuple[str, str], str] = {}

    def node(self, into, name: str, label: str, **attrs) -> None:
        self.nodes[name] = label
        into.node(name, label, **attrs)

    def edge(self, tail: str, head: str, label: str = "", **attrs) -> None:
        self.edges[(tail, head)] = label
        self.dot.edge(tail, head, label or None, **attrs)

    def structure(self) -> dict:
        """Node names with their label lines, and edges with their labels, as the SVG shows them."""
        return {"nodes": {name: [line for line in re.split(r"\\[nlr]|\n", label) if line]
                          for name, label in self.nodes.items()},
                "edges": {f"{a}->{b}": label for (a, b), label in self.edges.items()}}


def _providers(doc: dict) -> list[str]:
    return [p for p in ("kubernetes", "helm") if p in doc.get("provider", {})]


def graph(doc: dict, title: str) -> Drawing:
    """Every resource of one synthesized stack: layers as clusters, resources as nodes, references as edges."""
    elements, edges = _resolved_edges(doc)
    known = set(elements)
    drawing = Drawing(title, graph_attr={"rankdir": "LR", "label": title, "labelloc": "t", "fontsize": "20",
                                         "fontname": "Helvetica", "compound": "true", "newrank": "true"},
                      node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "white",
                                 "fontname": "Helvetica", "fontsize": "10"},
                      edge_attr={"color": "#888888", "arrowsize": "0.6"})
    dot = drawing.dot
    by_layer: dict[str, list[str]] = defaultdict(list)
    for addr, (layer, _) in elements.items():
        if not addr.startswith(FOLDED):
            by_layer[layer].append(addr)
    providers = _providers(doc)
    for layer in sorted(by_layer, key=_layer_order):
        with dot.subgraph(name=f"cluster_{layer}") as sub:
            sub.attr(label=layer, style="filled", color="#bbbbbb", fillcolor=LAYER_COLOURS.get(layer, "#ffffff"))
            for addr in sorted(by_layer[layer]):
                rtype, name = addr.removeprefix("data.").split(".", 1)
                short = re.sub(r"_[0-9A-F]{8}$", "", name).split("_", 1)[-1]
                drawing.node(sub, addr, f"{rtype}\n{short}", shape="note" if addr.startswith("data.") else "box")
    if providers:
        with dot.subgraph(name="cluster_providers") as sub:
            sub.attr(label="providers", style="dashed")
            for name in providers:
                drawing.node(sub, f"provider.{name}", f"provider\n{name}", shape="component")
    for addr in sorted(edges):
        for target in sorted(edges[addr]):
            drawing.edge(addr, target)
    for name in providers:
        for conf in doc["provider"][name]:
            for target in sorted(_refs(conf, known)):
                drawing.edge(f"provider.{name}", target, style="dashed")
        for addr in sorted(a for a in known if a.startswith(f"{name}_")):
            drawing.edge(addr, f"provider.{name}", style="dotted", arrowhead="none")
    return drawing


LAYER_FILES = {"network": "constructs/network.py", "iam": "constructs/iam.py", "cluster": "constructs/cluster.py",
               "addons": "constructs/addons.py", "karpenter": "constructs/karpenter.py", "teardown": "constructs/teardown.py",
               "stack": "stacks/platform.py"}


def overview(doc: dict, title: str) -> Drawing:
    """One box per layer listing its resource kinds with counts; an edge per pair of layers that reference
    each other, labelled with the number of references. Readable at page width (about 800 px)."""
    elements, edges = _resolved_edges(doc)
    kinds: dict[str, Counter] = defaultdict(Counter)
    reads: Counter = Counter()
    read_kinds: dict[str, Counter] = defaultdict(Counter)
    for addr, (layer, _) in elements.items():
        if addr.startswith("data."):
            reads[layer] += 1
            read_kinds[layer][addr.split(".")[1]] += 1
        else:
            kinds[layer][addr.split(".", 1)[0]] += 1
    drawing = Drawing(title, graph_attr={"rankdir": "BT", "label": title, "labelloc": "t", "fontsize": "16",
                                         "fontname": "Helvetica", "nodesep": "0.2", "ranksep": "0.45",
                                         "size": "9.1,30"},
                      node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                 "fontsize": "12", "margin": "0.12,0.06"},
                      edge_attr={"color": "#777777", "arrowsize": "0.7", "fontname": "Helvetica", "fontsize": "10"})
    layers = sorted(set(kinds) | set(reads), key=_layer_order)
    for layer in layers:
        total = sum(kinds[layer].values())
        head = f"{layer}: {total} resources ({LAYER_FILES.get(layer, layer)})"
        lines = [f"{count} × {rtype}" for rtype, count in sorted(kinds[layer].items(), key=lambda kv: (-kv[1], kv[0]))]
        if reads[layer] and not any(k.startswith("aws_") for k in kinds[layer]):  # it builds nothing: what it reads
            lines += [f"reads {count} × {rtype}" for rtype, count in
                      sorted(read_kinds[layer].items(), key=lambda kv: (-kv[1], kv[0]))]
        elif reads[layer]:
            lines.append(f"+ {reads[layer]} data sources (reads)")
        label = head + "\\n" + "".join(f"{line}\\l" for line in lines)
        drawing.node(drawing.dot, layer, label, fillcolor=LAYER_COLOURS.get(layer, "#ffffff"), color="#999999")
    between: Counter = Counter()
    for addr, targets in edges.items():
        for target in targets:
            a, b = elements[addr][0], elements[target][0]
            if a != b:
                between[(a, b)] += 1
    for (a, b), count in sorted(between.items()):
        drawing.edge(a, b, f"{count} ref{'s' * (count > 1)}")
    providers = _providers(doc)
    if providers:
        name = "providers"
        drawing.node(drawing.dot, name, f"{' + '.join(providers)} providers\n(configured from the cluster)",
                     shape="component", style="dashed", fillcolor="white")
        targets = Counter(elements[t][0] for p in providers for conf in doc["provider"][p]
                          for t in _refs(conf, set(elements)))
        for layer, count in sorted(targets.items()):
            drawing.edge(name, layer, f"{count} ref{'s' * (count > 1)}", style="dashed")
        users = sorted({elements[a][0] for a in elements if a.split(".", 1)[0].startswith(tuple(f"{p}_" for p in providers))},
                       key=_layer_order)
        for layer in users:
            drawing.edge(layer, name, "uses", style="dotted")
    return drawing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environment", help="stack name, e.g. dev")
    parser.add_argument("--synth-dir", default=str(ROOT / "cdktf.out"), help="cdktf output directory")
    parser.add_argument("--format", choices=["svg", "png", "dot"], default="svg")
    parser.add_argument("--out", help="output path without extension (default docs/diagram-<env>)")
    parser.add_argument("--overview-only", action="store_true", help="draw the overview, not the full graph")
    args = parser.parse_args(argv)
    source = Path(args.synth_dir) / "stacks" / args.environment / "cdk.tf.json"
    if not source.is_file():
        print(f"error: {source} does not exist; run `scripts/synth.sh` (or `python main.py`) first", file=sys.stderr)
        return 2
    doc = json.loads(source.read_text())
    out = Path(args.out) if args.out else ROOT / "docs" / f"diagram-{args.environment}"
    out.parent.mkdir(parents=True, exist_ok=True)
    every = "" if args.overview_only else f" (every resource: {out.name}.svg)"
    pictures = [(overview(doc, f"{args.environment}: the layers and what each creates{every}"),
                 out.with_name(f"{out.name}-overview")),
                (graph(doc, f"{args.environment}: VPC, EKS, IAM, Karpenter"), out)][:1 if args.overview_only else 2]
    for drawing, path in pictures:
        if args.format == "dot":
            path.with_suffix(".dot").write_text(drawing.dot.source)
            print(path.with_suffix(".dot"))
            continue
        try:
            print(drawing.dot.render(outfile=str(path.with_suffix(f".{args.format}")), cleanup=True))
        except graphviz.ExecutableNotFound:
            print("error: Graphviz's `dot` is not installed (apt-get install graphviz / brew install graphviz)",
                  file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
