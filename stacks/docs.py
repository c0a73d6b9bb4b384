"""Regenerate every generated part of the documentation, after a synth:

    pipenv run python main.py && pipenv run python -m stacks.docs

- stacks/environments/schema.json and README's configuration reference (``stacks.schema``);
- README's example errors, each produced by the real loader on the shipped ``dev.yaml`` with one mistake;
- README's cost table, counted from the synthesized ``dev`` and ``prod`` stacks and the example of an existing
  network, ``examples/shared-vpc.yaml`` (``stacks.cost``);
- docs/diagram-dev-overview.svg and docs/diagram-dev.svg, and docs/diagram-shared-vpc-overview.svg (the
  example of an existing network) (``stacks.diagram``; needs Graphviz's ``dot``).

Tests fail while any of them differs from what this command would write.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml

from stacks.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHIPPED = ("dev", "prod")  # the environments the cost table prices (users' own files never change the README)
EXAMPLE = "shared-vpc"  # and the shipped example of an existing network (examples/shared-vpc.yaml), synthesized here
ERRORS_START, ERRORS_END = "<!-- config-errors:start -->", "<!-- config-errors:end -->"

# (what the example changes in dev.yaml, as YAML, the patch merged into dev.yaml)
EXAMPLES: list[tuple[str, dict]] = [
    ("cluster: {node_desired_size: 5}", {"cluster": {"node_desired_size": 5}}),
    ("karpenter: {version: 1.1.0}", {"karpenter": {"version": "1.1.0"}}),
    ("cluster: {version: 1.30}", {"cluster": {"version": 1.30}}),
]


def _merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for key, value in patch.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def example_errors() -> str:
    """The README block: each example's edit and the line ``python main.py`` prints for it."""
    dev = yaml.safe_load((ROOT / "stacks/environments/dev.yaml").read_text())
    lines = ["```"]
    with tempfile.TemporaryDirectory() as tmp:
        for edit, patch in EXAMPLES:
            path = Path(tmp) / "dev.yaml"
            path.write_text(yaml.safe_dump(_merge(dev, patch)))
            try:
                load_config(path)
            except ConfigError as err:
                lines += [f"# dev.yaml with {edit}", f"error: {err}"]
            else:
                raise SystemExit(f"error: stacks/docs.py EXAMPLES: dev.yaml with {edit} loads without an error; "
                                 "pick a mistake the loader refuses")
    return "\n".join(lines + ["```"])


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with what lies between the ``start`` and ``end`` markers replaced by ``body``."""
    if start not in text or end not in text:
        raise SystemExit(f"error: README.md lacks the {start} ... {end} markers; put them back where the block goes")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def synthesized(outdir: Path, names=SHIPPED) -> dict[str, dict]:
    docs = {}
    for name in names:
        path = outdir / "stacks" / name / "cdk.tf.json"
        if not path.is_file():
            raise SystemExit(f"error: {path} does not exist; run `pipenv run python main.py` first")
        docs[name] = json.loads(path.read_text())
    return docs


def readme(text: str, docs: dict[str, dict]) -> str:
    from stacks.cost import END, START, table
    from stacks.schema import readme_with_reference

    text = readme_with_reference(text)
    text = replace_block(text, ERRORS_START, ERRORS_END, example_errors())
    return replace_block(text, START, END, table(docs))


def synthesize_example(outdir: Path) -> dict:
    """The stack of examples/shared-vpc.yaml, synthesized into ``outdir`` (main.py synthesizes only
    stacks/environments/*.yaml)."""
    from stacks.config import ENVIRONMENTS_DIR
    from stacks.platform import build_app

    config = load_config(ENVIRONMENTS_DIR / "examples" / f"{EXAMPLE}.yaml")
    build_app({EXAMPLE: config}, str(outdir)).synth()
    return json.loads((outdir / "stacks" / EXAMPLE / "cdk.tf.json").read_text())


def main() -> int:
    from stacks import diagram, schema

    with tempfile.TemporaryDirectory() as tmp:
        docs = {**synthesized(ROOT / "cdktf.out"), EXAMPLE: synthesize_example(Path(tmp))}
        schema.write_schema()
        README.write_text(readme(README.read_text(), docs))
        print(f"wrote {schema.SCHEMA_FILE} and the generated blocks of {README}")
        return diagram.main(["dev"]) or diagram.main([EXAMPLE, "--synth-dir", tmp, "--overview-only"])


if __name__ == "__main__":
    sys.exit(main())
