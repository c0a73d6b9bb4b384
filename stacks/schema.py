"""Generated documentation of the environment files, from the config models (so it cannot drift).

    pipenv run python -m stacks.schema      # rewrite stacks/environments/schema.json and README's reference
    pipenv run python -m stacks.docs        # the same plus every other generated part (needs a synth)

Tests fail when either is out of date.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from stacks.config import SCHEMA_FILE, StackConfig, json_schema

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (tuple, list):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[1])}"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "bool": "boolean", "NoneType": "null"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def _default(field) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        return ", ".join(f"`{k}`" for k in value)
    if value is None:
        return "—"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def _summary(model: type[BaseModel]) -> str:
    return ((model.__doc__ or "").strip().splitlines() or [""])[0]


def _rows(model: type[BaseModel], prefix: str = "", when: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        key = f"`{path}`{when}"
        annotation = field.annotation
        args = typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.append(f"| {key} | section | | {_summary(annotation)} |")
            rows += _rows(annotation, f"{path}.")
        elif (len(args) == 2 and type(None) in args and isinstance(args[0], type)
              and issubclass(args[0], BaseModel)):  # an optional section: absent unless written
            rows.append(f"| {key} | section, optional | — | {field.description or _summary(args[0])} |")
            rows += _rows(args[0], f"{path}.")
        elif name == "backend":
            rows.append(f"| {key} | section | **required** | {field.description} |")
            for variant in args:
                kind = typing.get_args(variant.model_fields["type"].annotation)[0]
                rows += _rows(variant, f"{path}.", f" ({kind})")
        elif typing.get_origin(annotation) is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
            rows.append(f"| {key} | map of {args[1].__name__} | {_default(field)} | {field.description or ''} |")
            rows += _rows(args[1], f"{path}.<name>.")
        else:
            description = (field.description or "").replace("|", "\\|")
            rows.append(f"| {key} | {_type_name(annotation)} | {_default(field)} | {description} |")
    return rows


def reference() -> str:
    header = "| key | type | default | meaning |\n|---|---|---|---|"
    return "\n".join([header, *_rows(StackConfig)])


def readme_with_reference(text: str) -> str:
    block = f"{START}\n{reference()}\n{END}"
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)


def write_schema() -> None:
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_schema()
    README.write_text(readme_with_reference(README.read_text()))
    print(f"wrote {SCHEMA_FILE} and the configuration reference in {README}")
