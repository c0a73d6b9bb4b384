"""AWS limits the emulator does not enforce, at the longest cluster name the config accepts.

The ``t-alt`` variant is named with that name (``tests.variants.longest_name``: found black-box by
validating ever longer names until ``StackConfig`` refuses one). In its synthesized JSON:

- names: IAM role 64, IAM managed policy 128, role inline policy 128, EventBridge rule 64,
  EventBridge target id 64, SQS queue 80, EKS cluster 100, EKS node group 63, CloudWatch log group
  512, KMS alias 256, IAM instance profile 128 (``name_prefix``: the limit less the 26 characters
  Terraform appends), tag keys 128 / values 256 (resource ``tags`` and the provider's
  ``default_tags``);
- IAM policy sizes, whitespace not counted, each policy rendered by tests/iam_policies.py with
  placeholder ARNs of realistic length (the real names: the queue, role and cluster ARNs carry the long
  cluster name): managed policy 6,144 characters, a role's inline policies 10,240 together, a role
  trust policy 2,048 (the default quota), a KMS key policy 32,768; at most 10 managed policies
  attached per role (default quota).

Every other variant's names are also projected to the longest name (a name holding the cluster name
is a template ``<name>`` + fixed text), so a resource only another variant creates is covered too.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from stacks.config import ENVIRONMENTS_DIR, load_config
from tests import iam_policies
from tests.variants import VARIANTS, _override, longest_name, name_of_length, variant_configs

# (resource type, attribute) -> AWS limit (characters)
NAME_LIMITS: dict[tuple[str, str], int] = {
    ("aws_iam_role", "name"): 64,
    ("aws_iam_policy", "name"): 128,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_iam_instance_profile", "name"): 128,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_cloudwatch_event_target", "target_id"): 64,
    ("aws_sqs_queue", "name"): 80,
    ("aws_eks_cluster", "name"): 100,
    ("aws_eks_node_group", "node_group_name"): 63,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_kms_alias", "name"): 256,
}
NAME_PREFIX_SUFFIX = 26  # characters Terraform appends to a name_prefix
TAG_KEY_LIMIT, TAG_VALUE_LIMIT = 128, 256

MANAGED_POLICY_LIMIT = 6_144
ROLE_INLINE_LIMIT = 10_240  # all inline policies of one role together
TRUST_POLICY_LIMIT = 2_048  # default quota (raisable to 8,192)
KMS_KEY_POLICY_LIMIT = 32_768
MANAGED_POLICIES_PER_ROLE = 10  # default quota (raisable to 20)

STACK = "t-alt"


def _cluster_name(doc: dict) -> str:
    (cluster,) = doc["resource"]["aws_eks_cluster"].values()
    return cluster["name"]


# ----------------------------------------------------------------------------- names


def _names(doc: dict) -> list[tuple[str, str, int]]:
    """``(what, value, limit)`` of every limited name and tag of ``doc``; references resolved to their
    placeholders."""
    resolver = iam_policies.Resolver(doc)
    out = []
    for (rtype, attr), limit in NAME_LIMITS.items():
        for key, body in doc.get("resource", {}).get(rtype, {}).items():
            if isinstance(body.get(attr), str):
                out.append((f"{rtype}.{key}.{attr}", resolver.substitute(body[attr]), limit))
            prefix = f"{attr}_prefix"  # name_prefix, node_group_name_prefix
            if isinstance(body.get(prefix), str):
                out.append((f"{rtype}.{key}.{prefix}", resolver.substitute(body[prefix]), limit - NAME_PREFIX_SUFFIX))
    tag_sets = [(f"{rtype}.{key}.tags", body.get("tags"))
                for rtype, items in doc.get("resource", {}).items() for key, body in items.items()]
    for pname, blocks in doc.get("provider", {}).items():
        for block in blocks if isinstance(blocks, list) else [blocks]:
            for default in block.get("default_tags", []) or []:
                tag_sets.append((f"provider.{pname}.default_tags", default.get("tags")))
    for where, tags in tag_sets:
        if isinstance(tags, dict):
            for k, v in tags.items():
                out.append((f"{where} key {k!r}", resolver.substitute(k), TAG_KEY_LIMIT))
                out.append((f"{where}[{k!r}]", resolver.substitute(str(v)), TAG_VALUE_LIMIT))
    return out


def name_violations(doc: dict, cluster_name: str | None = None, at_length: int | None = None) -> list[str]:
    """One line per name over its limit. With ``cluster_name`` and ``at_length``, a name holding the
    cluster name is measured as if the cluster name had ``at_length`` characters."""
    lines = []
    for what, value, limit in _names(doc):
        count = value.count(cluster_name) if cluster_name else 0
        length = len(value) + count * ((at_length or len(cluster_name or "")) - len(cluster_name or ""))
        if length <= limit:
            continue
        if count:
            template = value.replace(cluster_name, "<name>")
            fits = (limit - (len(value) - count * len(cluster_name))) // count
            lines.append(f"{what} = {template!r}: {length} > {limit} characters at a {at_length or len(cluster_name)}-"
                         f"character cluster name (this template fits names of at most {fits})")
        else:
            lines.append(f"{what} = {value!r}: {length} > {limit} characters")
    return lines


# ----------------------------------------------------------------------------- policy sizes


def policy_size(document: dict) -> int:
    """IAM's measure: the characters of the JSON, whitespace not counted."""
    return len(re.sub(r"\s", "", json.dumps(document, separators=(",", ":"), ensure_ascii=False)))


def _role_of(doc: dict, rtype: str, key: str) -> str:
    """The role (``aws_iam_role.<key>`` or a literal name) an ``aws_iam_role_policy`` /
    ``aws_iam_role_policy_attachment`` belongs to."""
    role = doc["resource"][rtype][key]["role"]
    m = re.fullmatch(r"\$\{aws_iam_role\.([A-Za-z0-9_-]+)\.(?:name|id)\}", role)
    return f"aws_iam_role.{m[1]}" if m else role


def policy_sizes(doc: dict) -> dict[str, list[tuple[str, int, int]]]:
    """``{"managed" | "inline (per role)" | "trust" | "kms key": [(what, size, limit)]}``."""
    sizes: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    inline: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for policy in iam_policies.extract(doc):
        size = policy_size(policy.document)
        for used in policy.used_by:
            rtype, key, attr = used.split(".", 2)
            if rtype == "aws_iam_policy" and attr == "policy":
                sizes["managed"].append((f"{rtype}.{key} ({doc['resource'][rtype][key].get('name')})", size,
                                         MANAGED_POLICY_LIMIT))
            elif rtype == "aws_iam_role_policy" and attr == "policy":
                inline[_role_of(doc, rtype, key)].append((f"{rtype}.{key}", size))
            elif rtype == "aws_iam_role" and attr.startswith("inline_policy"):
                inline[f"aws_iam_role.{key}"].append((used, size))
            elif rtype == "aws_iam_role" and attr == "assume_role_policy":
                sizes["trust"].append((f"{rtype}.{key}", size, TRUST_POLICY_LIMIT))
            elif rtype == "aws_kms_key" and attr == "policy":
                sizes["kms key"].append((f"{rtype}.{key}", size, KMS_KEY_POLICY_LIMIT))
    for role, parts in inline.items():
        what = f"{role}: " + " + ".join(f"{p} {s}" for p, s in parts)
        sizes["inline (per role)"].append((what, sum(s for _, s in parts), ROLE_INLINE_LIMIT))
    return dict(sizes)


def attachments_per_role(doc: dict) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for key in doc.get("resource", {}).get("aws_iam_role_policy_attachment", {}):
        counts[_role_of(doc, "aws_iam_role_policy_attachment", key)] += 1
    for key, body in doc.get("resource", {}).get("aws_iam_role", {}).items():
        counts[f"aws_iam_role.{key}"] += len(body.get("managed_policy_arns") or [])
    return dict(counts)


def size_violations(doc: dict) -> list[str]:
    lines = [f"{kind}: {what}: {size} > {limit} characters (whitespace not counted)"
             for kind, entries in policy_sizes(doc).items() for what, size, limit in entries if size > limit]
    lines += [f"{role}: {n} managed policies attached > {MANAGED_POLICIES_PER_ROLE}"
              for role, n in attachments_per_role(doc).items() if n > MANAGED_POLICIES_PER_ROLE]
    return lines


def size_table(doc: dict) -> str:
    rows = [f"{size:>6} / {limit:<6} {kind}: {what}" for kind, entries in policy_sizes(doc).items()
            for what, size, limit in entries]
    return "\n".join(sorted(rows, key=lambda r: -int(r.split("/")[0])))


# ----------------------------------------------------------------------------- the longest name


@pytest.fixture(scope="module")
def longest() -> str:
    return longest_name(load_config(ENVIRONMENTS_DIR / "dev.yaml"))


def test_t_alt_has_the_longest_name_the_config_accepts(longest):
    dev = load_config(ENVIRONMENTS_DIR / "dev.yaml")
    config = variant_configs((STACK,))[STACK]
    assert config.name == longest
    assert re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", longest)
    with pytest.raises(ValueError):
        _override(dev, name=name_of_length(len(longest) + 1))
    # t-alt's other settings do not move the limit
    assert longest_name(config) == longest


def test_the_synthesized_t_alt_cluster_has_the_longest_name(synth, longest):
    assert _cluster_name(synth[STACK]) == longest


def test_aws_name_limits_hold_at_the_longest_name(synth, longest):
    doc = synth[STACK]
    assert {what.split(".")[0] for what, _, _ in _names(doc)} >= {
        "aws_iam_role", "aws_iam_policy", "aws_iam_role_policy", "aws_cloudwatch_event_rule", "aws_sqs_queue",
        "aws_eks_cluster", "aws_eks_node_group", "aws_cloudwatch_log_group", "aws_kms_alias"}
    lines = name_violations(doc, longest)
    if lines:
        pytest.fail(f"names over AWS's limits at the longest cluster name ({len(longest)} characters, "
                    f"{longest!r}):\n" + "\n".join(lines), pytrace=False)


@pytest.mark.parametrize("stack", VARIANTS)
def test_name_templates_fit_at_the_longest_name(synth, stack, longest):
    """Each variant's names that hold its cluster name, measured with a cluster name of the longest length."""
    doc = synth[stack]
    lines = name_violations(doc, _cluster_name(doc), at_length=len(longest))
    if lines:
        pytest.fail(f"{stack}: name templates over AWS's limits at a {len(longest)}-character cluster name:\n"
                    + "\n".join(lines), pytrace=False)


def test_iam_policy_sizes_fit_at_the_longest_name(synth):
    doc = synth[STACK]
    sizes = policy_sizes(doc)
    assert sizes.get("managed") and sizes.get("trust") and sizes.get("inline (per role)") and sizes.get("kms key")
    lines = size_violations(doc)
    if lines:
        pytest.fail("IAM policies over AWS's limits at the longest cluster name:\n" + "\n".join(lines)
                    + "\n\nall sizes:\n" + size_table(doc), pytrace=False)


def test_policy_placeholders_carry_the_real_names(synth, longest):
    """The sizes are only worth something if the placeholders are as long as the real values: every
    ARN of a named resource carries that resource's real name (the long cluster name for the queue,
    the roles, the cluster), no reference or logical id is left."""
    doc = synth[STACK]
    names = {body[attr] for (rtype, attr) in NAME_LIMITS for body in doc["resource"].get(rtype, {}).values()
             if isinstance(body.get(attr), str)}
    text = "\n".join(json.dumps(p.document) for p in iam_policies.extract(doc))
    assert "${" not in text
    assert not re.findall(r"[\w-]+_[0-9A-F]{8}\b", text)  # a CDKTF logical id in place of a name
    named = re.findall(r"arn:aws:(?:iam::\d{12}:role/|sqs:[a-z0-9-]+:\d{12}:|eks:[a-z0-9-]+:\d{12}:cluster/)"
                       r"([^\"*]+)", text)
    assert named and set(named) <= names, sorted(set(named) - names)
    assert set(re.findall(r"arn:aws:sqs:[a-z0-9-]+:\d{12}:([^\"]+)", text)) == {longest}  # the queue
    assert set(re.findall(r"arn:aws:eks:[a-z0-9-]+:\d{12}:cluster/([^\"]+)", text)) == {longest}
    assert any(longest in role for role in re.findall(r":role/([^\"*]+)", text))  # PassRole on the node role


# ----------------------------------------------------------------------------- the checkers, on toy JSON


def test_a_65_character_role_name_is_flagged():
    role = "r" * 65
    doc = {"resource": {"aws_iam_role": {"too-long": {"name": role}, "fits": {"name": "f" * 64}}}}
    assert name_violations(doc) == [f"aws_iam_role.too-long.name = {role!r}: 65 > 64 characters"]


def test_a_template_is_flagged_when_the_longest_name_overflows_it():
    doc = {"resource": {"aws_cloudwatch_event_rule": {"r": {"name": "ab-karpenter-instance-state-change"}},
                        "aws_sqs_queue": {"q": {"name": "ab"}}}}
    assert name_violations(doc, "ab", at_length=30) == []  # 30 + 32 = 62
    assert name_violations(doc, "ab", at_length=33) == [
        "aws_cloudwatch_event_rule.r.name = '<name>-karpenter-instance-state-change': 65 > 64 characters at a "
        "33-character cluster name (this template fits names of at most 32)"]


def test_oversized_policies_are_flagged():
    def rendered(body: dict) -> dict:
        (policy,) = iam_policies.extract({"data": {"aws_iam_policy_document": {"d": body}}})
        return policy.document

    def document(length: int) -> dict:
        body = {"statement": [{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/x"]}]}
        base = policy_size(rendered(body))
        body["statement"][0]["resources"] = ["arn:aws:s3:::b/" + "x" * (length - base + 1)]
        assert policy_size(rendered(body)) == length
        return body

    doc = {
        "data": {"aws_iam_policy_document": {"big": document(MANAGED_POLICY_LIMIT + 1), "fits": document(MANAGED_POLICY_LIMIT),
                                             "half": document(ROLE_INLINE_LIMIT // 2 + 1)}},
        "resource": {
            "aws_iam_policy": {"big": {"name": "big", "policy": "${data.aws_iam_policy_document.big.json}"},
                               "fits": {"name": "fits", "policy": "${data.aws_iam_policy_document.fits.json}"}},
            "aws_iam_role": {"r": {"name": "r"}},
            "aws_iam_role_policy": {
                "a": {"name": "a", "role": "${aws_iam_role.r.id}", "policy": "${data.aws_iam_policy_document.half.json}"},
                "b": {"name": "b", "role": "${aws_iam_role.r.id}", "policy": "${data.aws_iam_policy_document.half.json}"}},
        },
    }
    lines = size_violations(doc)
    assert len(lines) == 2, lines
    assert lines[0].startswith("managed: aws_iam_policy.big (big): 6145 > 6144")
    assert lines[1].startswith("inline (per role): aws_iam_role.r: ") and lines[1].endswith(
        f"{2 * (ROLE_INLINE_LIMIT // 2 + 1)} > 10240 characters (whitespace not counted)")
    assert policy_size({"a": " b c "}) == len('{"a":"bc"}')
