"""CEL rung: the NodePools and EC2NodeClasses the stack installs pass the CEL rules of Karpenter's CRDs.

The CRDs carry ``x-kubernetes-validations`` rules that the API server enforces on every create and that
JSON Schema validation never looks at: a manifest can be schema-valid and still be refused by the
cluster. The specification is the vendored upstream Karpenter 1.14.1 CRDs; the harness that evaluates
them (tests/cel_rules.py) says how closely it follows the API server.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from tests.cel_rules import CelHarnessError, CrdRules, compile_rule, load_crd
from tests.conftest import ROOT, load_yaml, one
from tests.variants import VARIANTS

CRDS = ROOT / "tests" / "fixtures" / "karpenter-1.14.1" / "chart" / "crds"
CRD_FILES = {"NodePool": CRDS / "karpenter.sh_nodepools.yaml",
             "EC2NodeClass": CRDS / "karpenter.k8s.aws_ec2nodeclasses.yaml"}

LABELS = "spec.template.metadata.labels"
REQUIREMENTS = "spec.template.spec.requirements"


def crd(kind: str) -> CrdRules:
    return load_crd(CRD_FILES[kind])


def manifests(doc: dict) -> list[dict]:
    """The objects the nodepools release installs."""
    (text,) = one(doc, "helm_release", "nodepools-release")["values"]
    return load_yaml(text)["manifests"]


def broken(pool: dict) -> list[tuple[str, str]]:
    """``(path, message)`` of every NodePool rule ``pool`` breaks."""
    return [(v.path, v.message) for v in crd("NodePool").violations(pool)]


# ----------------------------------------------------------------------------- the stack's objects


@pytest.mark.parametrize("stack", VARIANTS)
def test_every_nodepool_and_nodeclass_passes_every_cel_rule_of_its_crd(synth, stack):
    objects = manifests(synth[stack])
    assert {o["kind"] for o in objects} == set(CRD_FILES), "the release installs NodePools and an EC2NodeClass"
    refused = {}
    for obj in objects:
        rules = crd(obj["kind"])
        assert obj["apiVersion"] in rules.api_versions and obj["kind"] == rules.kind
        if violations := rules.violations(obj):
            refused[f"{obj['kind']}/{obj['metadata']['name']}"] = [str(v) for v in violations]
    assert refused == {}, "the API server would refuse:\n" + yaml.safe_dump(refused, width=200)


def test_cel_rules_are_evaluated_on_the_stacks_objects(synth):
    evaluated = [(path, rule) for stack in VARIANTS for obj in manifests(synth[stack])
                 for path, rule in crd(obj["kind"]).evaluate(obj).evaluated]
    print(f"CEL rules evaluated on the stacks' objects: {len(evaluated)}")
    assert len(evaluated) > 0
    paths = {path for path, _ in evaluated}
    assert REQUIREMENTS in paths
    assert any(re.fullmatch(rf"{re.escape(REQUIREMENTS)}\[\d+\]\.key", path) for path in paths)
    assert "spec.amiSelectorTerms" in paths  # the EC2NodeClass's rules run too


@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_every_rule_of_the_crd_compiles_in_the_harness(kind):
    rules = crd(kind).rules  # compiled on loading: a rule that does not compile raises there
    assert len(rules) == _rules_in(load_yaml(CRD_FILES[kind].read_text())) > 0


def _rules_in(node) -> int:
    """How many ``x-kubernetes-validations`` entries ``node`` holds anywhere, walked blindly."""
    if isinstance(node, dict):
        return len(node.get("x-kubernetes-validations", [])) + sum(_rules_in(v) for v in node.values())
    if isinstance(node, list):
        return sum(_rules_in(v) for v in node)
    return 0


def test_transition_rules_are_recognised_and_skipped_on_create(synth):
    rules = crd("NodePool").rules
    assert {r.rule for r in rules if r.transition} == {
        "has(self.replicas) == has(oldSelf.replicas)", "self.group == oldSelf.group", "self.kind == oldSelf.kind"}
    pool = next(o for o in manifests(synth["dev"]) if o["kind"] == "NodePool")
    skipped = crd("NodePool").evaluate(pool).transition_skipped
    assert ("spec.template.spec.nodeClassRef", "self.group == oldSelf.group") in skipped


# ----------------------------------------------------------------------------- the harness catches defects


@pytest.fixture
def valid_pool(synth) -> dict:
    """The dev stack's first NodePool with one plain template label. The stack's own labels are the
    business of the test above; these tests plant one defect each into a pool that has none."""
    pool = copy.deepcopy(next(o for o in manifests(synth["dev"]) if o["kind"] == "NodePool"))
    pool["spec"]["template"].setdefault("metadata", {})["labels"] = {"team": "platform"}
    assert broken(pool) == []
    return pool


def test_a_template_label_in_the_karpenter_sh_domain_is_refused(valid_pool):
    valid_pool["spec"]["template"]["metadata"]["labels"]["karpenter.sh/pool"] = "general"
    assert broken(valid_pool) == [(LABELS, 'label domain "karpenter.sh" is restricted')]


@pytest.mark.parametrize("key", ["karpenter.sh/nodepool", "kubernetes.io/hostname"])
def test_a_restricted_requirement_key_is_refused(valid_pool, key):
    requirements = valid_pool["spec"]["template"]["spec"]["requirements"]
    requirements.append({"key": key, "operator": "In", "values": ["x"]})
    assert broken(valid_pool) == [(f"{REQUIREMENTS}[{len(requirements) - 1}].key", f'label "{key}" is restricted')]


@pytest.mark.parametrize("values", [["5.5"], ["abc"], ["-1"], ["4", "8"]])
def test_a_gt_requirement_needs_one_non_negative_integer(valid_pool, values):
    valid_pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": values})
    assert broken(valid_pool) == [
        (REQUIREMENTS, "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value")]


def test_a_non_integer_gt_value_is_reported_with_its_evaluation_error(valid_pool):
    valid_pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["abc"]})
    (violation,) = crd("NodePool").violations(valid_pool)
    assert violation.error and "int" in violation.error


# ----------------------------------------------------------------------------- harness semantics


def _crd(spec: dict, kind: str = "Widget") -> CrdRules:
    """A one-version CRD whose ``spec`` has the schema ``spec``."""
    return CrdRules({"spec": {"group": "example.com", "names": {"kind": kind}, "versions": [
        {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                             "metadata": {"type": "object"}, "spec": spec}}}}]}})


def _widget(spec: dict | None = None) -> dict:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    return obj if spec is None else {**obj, "spec": spec}


def _rule(rule: str, **schema) -> dict:
    return {"type": "object", "x-kubernetes-validations": [{"rule": rule, "message": "broken"}], **schema}


def test_a_rule_calling_an_unsupported_function_raises_rather_than_passes():
    with pytest.raises(CelHarnessError, match="undeclared reference to 'quantity'"):
        _crd(_rule("quantity(self.size).isGreaterThan(quantity('1Gi'))"))
    with pytest.raises(CelHarnessError, match="fooBar"):
        compile_rule({"rule": "self.fooBar()"})


def test_a_rule_the_object_cannot_be_evaluated_against_raises():
    spec = _rule("self.count.size() > 0", properties={"count": {"type": "integer"}})
    with pytest.raises(CelHarnessError, match="no overload"):
        _crd(spec).violations(_widget({"count": 3}))
    with pytest.raises(CelHarnessError, match="registered function failed"):
        _crd(_rule("[1, 'a'].isSorted()")).violations(_widget({}))


def test_a_rule_runs_only_where_its_node_is_present():
    widgets = _crd({"type": "object", "properties": {"extra": _rule("false")}})
    assert widgets.evaluate(_widget({})).evaluated == []
    assert [v.path for v in widgets.violations(_widget({"extra": {}}))] == ["spec.extra"]


def test_has_is_false_for_an_absent_field_and_reading_it_is_an_evaluation_error():
    spec = {"properties": {"size": {"type": "integer"}}}
    assert _crd(_rule("!has(self.size)", **spec)).violations(_widget({})) == []
    (violation,) = _crd(_rule("self.size > 0", **spec)).violations(_widget({}))
    assert violation.error


def test_defaults_are_applied_before_the_rules_run():
    spec = _rule("self.mode == 'fast' && self.items.all(i, i.weight == 1)", properties={
        "mode": {"type": "string", "default": "fast"},
        "items": {"type": "array", "default": [{}], "items": {"type": "object", "properties": {
            "weight": {"type": "integer", "default": 1}}}}})
    assert _crd(spec).violations(_widget({})) == []


def test_property_names_are_escaped_as_kubernetes_does():
    spec = _rule("self.__namespace__ == 'a' && self.max__dash__size == 2",
                 properties={"namespace": {"type": "string"}, "max-size": {"type": "integer"}})
    assert _crd(spec).violations(_widget({"namespace": "a", "max-size": 2})) == []


@pytest.mark.parametrize("rule", [
    "'karpenter.sh/pool'.find('^([^/]+)') == 'karpenter.sh'",
    "'no-slash'.find('/') == ''",
    "'a1b22c'.findAll('[0-9]+') == ['1', '22'] && 'a1b22c'.findAll('[0-9]+', 1) == ['1']",
    "[1, 2, 2].isSorted() && !['b', 'a'].isSorted()",
    "'al2023@latest'.split('@') == ['al2023', 'latest']",
    "'AbC'.lowerAscii() == 'abc'",
    "'al2023@v1'.matches('^[a-zA-Z0-9]+@.+$')",
])
def test_the_kubernetes_library_functions_the_rules_use(rule):
    assert _crd(_rule(rule)).violations(_widget({})) == []
