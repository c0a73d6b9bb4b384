"""The CEL rules (``x-kubernetes-validations``) of a CustomResourceDefinition, evaluated against an object
the way the Kubernetes API server does on create.

JSON Schema validation ignores these rules, yet the API server refuses an object that breaks one of them,
so a manifest can pass every schema check and still never be admitted. :class:`CrdRules` compiles every
rule of a CRD with a real CEL implementation (``cel-expr-python``: Google's C++ runtime and type checker,
the same language definition as the cel-go that Kubernetes embeds) and evaluates them against an object.

What the harness mirrors of the API server, and where it stops:

* **Where rules apply.** The object's schema is the CRD version named by its ``apiVersion``. A rule at a
  schema node runs once per place the node occurs in the object (``properties``, ``items`` and
  ``additionalProperties`` are walked), with ``self`` bound to that part of the object. A node absent from
  the object, or null, runs no rule (the API server validates only non-null values).
* **Defaults and nulls.** Before any rule runs, the object is defaulted as the API server's structural
  defaulting does on create: an absent (or null, non-nullable) property that declares a ``default`` gets a
  copy of it, and the defaulted value is itself walked for nested defaults; then nulls of non-nullable
  properties without a default are dropped. So a rule sees ``spec.disruption.budgets`` even when a manifest
  leaves it out, exactly as the cluster would.
* **What ``self`` looks like.** Objects with declared ``properties`` expose only those properties (unknown
  fields are pruned, as the API server prunes them), under the Kubernetes escaped names (``__dash__`` for
  ``-``, ``__namespace__`` for a CEL keyword, ...); maps (``additionalProperties``) keep their keys as they
  are. At the root, ``metadata`` carries only ``name`` and ``generateName``. Strings with format
  ``date-time``/``date`` become timestamps and ``byte`` becomes bytes; ``type: number`` values are doubles.
  An absent field is absent: ``has(x.f)`` is false and ``x.f`` is an evaluation error, as in Kubernetes.
* **Transition rules.** A rule that refers to ``oldSelf`` only runs on update; on create (the only case
  here) it is compiled, so it is known to be supported, and then skipped, and counted as skipped.
* **Library.** The CEL standard library and macros, the strings extension (``split``, ``lowerAscii``, ...),
  and the Kubernetes functions registered in :data:`KUBERNETES_FUNCTIONS` (regex ``find``/``findAll``,
  list ``isSorted``). Regular expressions in those run on Python's ``re`` (Kubernetes uses RE2; they agree
  on the patterns these CRDs use). Other Kubernetes libraries (quantity, IP/CIDR, URL, sets, ...) are not
  registered: a rule calling one fails to compile, loudly.
* **Failures are loud.** A rule that does not compile, that needs an overload the harness lacks at run
  time, whose result is not a bool, or that makes a registered function fail unexpectedly raises
  :class:`CelHarnessError`: a rule the harness cannot evaluate is never reported as passing. A rule that
  evaluates to an error the API server would report (``int('abc')``, a missing key, an index out of
  range, an overflow) is a violation, as it is for the API server.
* **Not modelled:** the API server's cost limits, ``optionalOldSelf``, and typed (schema-derived) type
  checking: ``self`` is ``dyn``, so function names and literal operands are checked at compile time, and
  a mismatch between the object and the types a rule expects surfaces at run time (and raises).
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

__all__ = ["KUBERNETES_FUNCTIONS", "CelHarnessError", "CompiledRule", "CrdRules", "Evaluation", "Violation",
           "compile_rule", "load_crd"]


class CelHarnessError(Exception):
    """The harness cannot compile or evaluate a rule: a failure of the check, never a pass."""


# ----------------------------------------------------------------------------- Kubernetes functions

_impl_failures: list[BaseException] = []  # unexpected exceptions inside registered functions, per evaluation


def _registered(fn: Callable[..., Any], data_errors: tuple[type[BaseException], ...] = ()) -> Callable[..., Any]:
    """``fn`` as a CEL function body: an exception in ``data_errors`` is an evaluation error the API server
    would report too (a CEL error value); any other exception also makes the evaluation raise."""
    @functools.wraps(fn)
    def impl(*args: Any) -> Any:
        try:
            return fn(*args)
        except data_errors:
            raise
        except Exception as exc:
            _impl_failures.append(exc)
            raise
    return impl


def _find(text: str, pattern: str) -> str:
    """``<string>.find(<regex>)``: the leftmost match, or ``''`` (Kubernetes regex library)."""
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """``<string>.findAll(<regex>[, <limit>])``: every match, or the first ``limit`` (all when negative)."""
    matches = [m.group(0) for m in re.finditer(pattern, text)]
    return matches if limit < 0 else matches[:limit]


def _is_sorted(items: list[Any]) -> bool:
    """``<list>.isSorted()`` (Kubernetes lists library), for lists of one comparable scalar type."""
    kinds = {type(x) for x in items}
    if len(kinds) > 1 or not kinds <= {int, float, str, bytes, bool}:
        raise TypeError(f"isSorted() needs a list of one comparable type, got {sorted(k.__name__ for k in kinds)}")
    return all(a <= b for a, b in zip(items, items[1:]))


_STRING, _INT, _BOOL = cel.Type.STRING, cel.Type.INT, cel.Type.BOOL

KUBERNETES_FUNCTIONS = [
    cel.FunctionDecl("find", [
        cel.Overload("string_find_string", _STRING, [_STRING, _STRING], is_member=True,
                     impl=_registered(_find, (re.error,)))]),
    cel.FunctionDecl("findAll", [
        cel.Overload("string_find_all_string", cel.Type.List(_STRING), [_STRING, _STRING], is_member=True,
                     impl=_registered(_find_all, (re.error,))),
        cel.Overload("string_find_all_string_int", cel.Type.List(_STRING), [_STRING, _STRING, _INT],
                     is_member=True, impl=_registered(_find_all, (re.error,)))]),
    cel.FunctionDecl("isSorted", [
        cel.Overload("list_is_sorted", _BOOL, [cel.Type.List(cel.Type.DYN)], is_member=True,
                     impl=_registered(_is_sorted))]),
]
"""The Kubernetes CEL library functions beyond the CEL standard library and strings extension that the
harness provides; ``tests/test_cel.py`` pins their results."""


def _env(*variables: str) -> cel.Env:
    return cel.NewEnv(variables={name: cel.Type.DYN for name in variables},
                      extensions=[ext_strings.ExtStrings()], functions=KUBERNETES_FUNCTIONS)


_CREATE_ENV = _env("self")
_UPDATE_ENV = _env("self", "oldSelf")


# ----------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class CompiledRule:
    """One ``x-kubernetes-validations`` entry, compiled. ``transition``: it refers to ``oldSelf``."""

    location: str  # the schema node, e.g. ``spec.template.spec.requirements[*].key``
    rule: str
    message: str | None
    message_expression: str | None
    field_path: str | None
    reason: str | None
    transition: bool
    program: Any = field(repr=False, compare=False)
    message_program: Any = field(repr=False, compare=False)


@functools.cache
def _compile(source: str) -> tuple[Any, bool]:
    """``(program, transition)``: a rule that compiles without ``oldSelf`` declared is not a transition
    rule; one that compiles only with it declared is (the type checker decides, not a text search)."""
    try:
        return _CREATE_ENV.compile(source), False
    except RuntimeError as create_error:
        try:
            return _UPDATE_ENV.compile(source), True
        except RuntimeError:
            raise CelHarnessError(f"cannot compile CEL {source!r}: {create_error}") from None


def compile_rule(entry: dict, location: str = "") -> CompiledRule:
    """Compile one ``x-kubernetes-validations`` entry, or raise :class:`CelHarnessError`."""
    if not isinstance(entry.get("rule"), str):
        raise CelHarnessError(f"{location or '(root)'}: validation without a rule: {entry}")
    program, transition = _compile(entry["rule"])
    message_expression = entry.get("messageExpression")
    message_program = _compile(message_expression)[0] if message_expression else None
    return CompiledRule(location=location, rule=entry["rule"], message=entry.get("message"),
                        message_expression=message_expression, field_path=entry.get("fieldPath"),
                        reason=entry.get("reason"), transition=transition, program=program,
                        message_program=message_program)


def _schema_nodes(schema: dict, location: str = "") -> Iterator[tuple[str, dict]]:
    """Every schema node reachable through ``properties``/``items``/``additionalProperties``."""
    yield location, schema
    for name, child in schema.get("properties", {}).items():
        yield from _schema_nodes(child, f"{location}.{name}" if location else name)
    if isinstance(schema.get("items"), dict):
        yield from _schema_nodes(schema["items"], f"{location}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _schema_nodes(schema["additionalProperties"], f"{location}[*]")


# ----------------------------------------------------------------------------- the object as the API server sees it


def _nullable(schema: dict) -> bool:
    return bool(schema.get("nullable"))


def _default(value: Any, schema: dict) -> None:
    """Structural defaulting in place (apiextensions-apiserver ``structuraldefaulting.Default``)."""
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if "default" in prop and (name not in value or (value[name] is None and not _nullable(prop))):
                value[name] = copy.deepcopy(prop["default"])
        for name, child in value.items():
            if name in schema.get("properties", {}):
                _default(child, schema["properties"][name])
            elif isinstance(schema.get("additionalProperties"), dict):
                _default(child, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


def _drop_nulls(value: Any, schema: dict) -> None:
    """Drop nulls of non-nullable properties (``PruneNonNullableNullsWithoutDefaults``)."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in [n for n, v in value.items() if v is None and n in props and not _nullable(props[n])]:
            del value[name]
        for name, child in value.items():
            if name in props:
                _drop_nulls(child, props[name])
            elif isinstance(schema.get("additionalProperties"), dict):
                _drop_nulls(child, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _drop_nulls(item, schema["items"])


_CEL_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
                 "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
_ESCAPE = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}


def escape_property(name: str) -> str | None:
    """The name CEL sees a declared property under (Kubernetes ``cel.Escape``); None: not accessible."""
    if not name or name[0].isdigit():
        return None
    if name in _CEL_RESERVED:
        return f"__{name}__"
    parts = re.split(r"(__|[-./]|[^a-zA-Z0-9_])", name)
    escaped = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            escaped.append(part)
        elif part in _ESCAPE:
            escaped.append(_ESCAPE[part])
        else:
            return None
    return "".join(escaped)


def _cel_value(value: Any, schema: dict, root: bool = False) -> Any:
    """``value`` as CEL sees it under ``schema``: pruned to declared properties, escaped names, typed scalars."""
    if value is None:
        return None
    if isinstance(value, dict):
        props = schema.get("properties")
        if root:
            meta = value.get("metadata") or {}
            value = {**value, "metadata": {k: meta[k] for k in ("name", "generateName") if k in meta}}
            props = {**(props or {}), "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}
        if props:
            out = {}
            for name, child in value.items():
                escaped = escape_property(name) if name in props else None
                if escaped is not None:
                    out[escaped] = _cel_value(child, props[name])
                elif schema.get("x-kubernetes-preserve-unknown-fields"):
                    out[name] = child
            return out
        if isinstance(schema.get("additionalProperties"), dict):
            return {k: _cel_value(v, schema["additionalProperties"]) for k, v in value.items()}
        return dict(value) if schema.get("x-kubernetes-preserve-unknown-fields") or "type" not in schema else {}
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [_cel_value(v, items) for v in value]
    if isinstance(value, str) and schema.get("type") == "string" and schema.get("format"):
        return _formatted(value, schema["format"])
    if isinstance(value, int) and not isinstance(value, bool) and schema.get("type") == "number":
        return float(value)
    return value


def _formatted(value: str, fmt: str) -> Any:
    """A string with a format the API server types (others stay strings)."""
    if fmt == "date-time":
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if fmt == "date":
        return datetime.datetime.combine(datetime.date.fromisoformat(value), datetime.time(), datetime.timezone.utc)
    if fmt == "byte":
        return base64.b64decode(value)
    if fmt == "duration":
        raise CelHarnessError(f"format 'duration' is not modelled (value {value!r})")
    return value


# ----------------------------------------------------------------------------- evaluating


@dataclass(frozen=True)
class Violation:
    """A rule the object breaks: where (a Kubernetes field path), which rule, and what the API server says.
    ``error``: the evaluation error, when the rule failed by erroring rather than by returning false."""

    path: str
    rule: str
    message: str
    error: str | None = None

    def __str__(self) -> str:
        why = f" (evaluation error: {self.error})" if self.error else ""
        return f"{self.path or '(root)'}: {self.message}{why}  [rule: {self.rule}]"


@dataclass
class Evaluation:
    """The outcome of every rule on one object: its violations, the ``(path, rule)`` evaluated, and the
    transition rules skipped because this is a create."""

    violations: list[Violation] = field(default_factory=list)
    evaluated: list[tuple[str, str]] = field(default_factory=list)
    transition_skipped: list[tuple[str, str]] = field(default_factory=list)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _run(program: Any, data: dict, what: str) -> tuple[Any, str | None]:
    """Evaluate ``program``: ``(value, None)``, or ``(None, error text)`` for an error the API server would
    report; raise :class:`CelHarnessError` for one that says the harness, not the object, is lacking."""
    del _impl_failures[:]
    result = program.eval(data=data)
    if _impl_failures:
        failure = _impl_failures[0]
        del _impl_failures[:]
        raise CelHarnessError(f"{what}: a registered function failed: {failure!r}") from failure
    if result.type() == cel.Type.ERROR:
        text = str(result.value())
        if "No matching overloads" in text or "no_matching_overload" in text:
            raise CelHarnessError(f"{what}: no overload for the object's types: {text}")
        return None, text
    return result.value(), None


class CrdRules:
    """Every CEL rule of one CRD, compiled at construction (a rule that does not compile raises)."""

    def __init__(self, crd: dict, source: str = "CRD") -> None:
        self.source = source
        self.group: str = crd["spec"]["group"]
        self.kind: str = crd["spec"]["names"]["kind"]
        self._schemas = {f"{self.group}/{v['name']}": v["schema"]["openAPIV3Schema"]
                         for v in crd["spec"]["versions"] if v.get("served", True)}
        self._rules: dict[int, list[CompiledRule]] = {}
        self.rules: list[CompiledRule] = []
        for api_version, schema in self._schemas.items():
            for location, node in _schema_nodes(schema):
                compiled = [compile_rule(entry, location) for entry in node.get("x-kubernetes-validations", [])]
                self._rules[id(node)] = compiled
                self.rules += compiled

    @property
    def api_versions(self) -> list[str]:
        """The served ``apiVersion`` values."""
        return list(self._schemas)

    def evaluate(self, obj: dict) -> Evaluation:
        """Every applicable rule on ``obj``, as the API server would run them when ``obj`` is created."""
        if obj.get("kind") != self.kind or obj.get("apiVersion") not in self._schemas:
            raise CelHarnessError(f"{obj.get('apiVersion')}/{obj.get('kind')} is not served by {self.source} "
                                  f"({self.kind} in {self.api_versions})")
        schema = self._schemas[obj["apiVersion"]]
        admitted = copy.deepcopy(obj)
        _default(admitted, schema)
        _drop_nulls(admitted, schema)
        evaluation = Evaluation()
        self._walk(admitted, schema, "", evaluation)
        return evaluation

    def violations(self, obj: dict) -> list[Violation]:
        """The rules ``obj`` breaks (empty: the API server's CEL checks admit it)."""
        return self.evaluate(obj).violations

    def _walk(self, value: Any, schema: dict, path: str, evaluation: Evaluation) -> None:
        if value is None:
            return
        rules = self._rules.get(id(schema), [])
        if rules:
            data = {"self": _cel_value(value, schema, root=not path)}
            for rule in rules:
                if rule.transition:
                    evaluation.transition_skipped.append((path, rule.rule))
                else:
                    self._check(rule, data, path, evaluation)
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name, child in value.items():
                if name in props:
                    self._walk(child, props[name], _child(path, name), evaluation)
                elif isinstance(schema.get("additionalProperties"), dict):
                    self._walk(child, schema["additionalProperties"], f"{path}[{name}]", evaluation)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                self._walk(item, schema["items"], f"{path}[{index}]", evaluation)

    def _check(self, rule: CompiledRule, data: dict, path: str, evaluation: Evaluation) -> None:
        what = f"{self.source}: {path or '(root)'}: rule {rule.rule!r}"
        result, error = _run(rule.program, data, what)
        evaluation.evaluated.append((path, rule.rule))
        if error is None and not isinstance(result, bool):
            raise CelHarnessError(f"{what}: evaluated to {result!r}, not a bool")
        if result is True:
            return
        message = rule.message or f"failed rule: {rule.rule}"
        if rule.message_program is not None:
            text, _ = _run(rule.message_program, data, f"{what} messageExpression")
            if isinstance(text, str) and text.strip():
                message = text
        where = path + rule.field_path if rule.field_path else path
        evaluation.violations.append(Violation(path=where, rule=rule.rule, message=message, error=error))


@functools.cache
def load_crd(path: Path) -> CrdRules:
    """The compiled rules of the CRD file at ``path`` (compiled once per session)."""
    from tests.conftest import load_yaml

    return CrdRules(load_yaml(Path(path).read_text()), source=Path(path).name)
