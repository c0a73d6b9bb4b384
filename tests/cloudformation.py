"""Upstream's getting-started CloudFormation template, read as plain data for the spec tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short-form intrinsics as plain values: ``!Sub s`` -> ``s``
    (placeholders kept, ``!Sub [s, {var: value}]`` fills in the given variables), ``!GetAtt A.B`` ->
    ``"${A.B}"``, ``!Ref A`` -> ``"${A}"``, any other ``!Fn`` -> ``{"Fn::Fn": value}``."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Sub":
        if isinstance(value, list):
            text, variables = value
            for var, sub in variables.items():
                text = text.replace(f"${{{var}}}", str(sub))
            return text
        return value
    if tag_suffix == "GetAtt":
        return "${" + (value if isinstance(value, str) else ".".join(value)) + "}"
    if tag_suffix == "Ref":
        return "${" + value + "}"
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict:
    """The template at ``path``, its intrinsics read as described in ``_CloudFormationLoader``."""
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
