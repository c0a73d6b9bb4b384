"""Every IAM policy document of a synthesized stack, as plain IAM JSON an offline linter can read.

Sources:
- ``data.aws_iam_policy_document`` blocks (how this project writes every policy, via
  ``constructs/policy.py``): statement blocks become IAM statements;
- literal JSON strings in the policy attributes of ``aws_iam_policy``, ``aws_iam_role_policy``,
  ``aws_iam_role`` (``assume_role_policy``, ``inline_policy``), ``aws_kms_key``, ``aws_sqs_queue``,
  ``aws_sqs_queue_policy`` and friends. A value that is just a reference to a policy document above is
  not extracted twice; a ``jsonencode(...)`` expression is refused (it is HCL, not JSON: write the
  policy with ``policy_document()`` instead).

Terraform references (``${...}``) are replaced by placeholder values of the right shape, derived
from the referenced resource (``aws_iam_role.x.arn`` -> ``arn:aws:iam::123456789012:role/<its name>``,
the OIDC issuer -> ``oidc.eks.<region>.amazonaws.com/id/<id>``, the partition -> ``aws``...), because
linters flag ``${...}`` as malformed ARNs. A reference without a known placeholder raises
``UnresolvedReference`` naming the expression: add its shape to ``_ARN`` / ``_SCALAR`` below rather than
letting it through unlinted.

Each policy is classified by how the stack uses it: ``trust`` (an ``assume_role_policy``),
``resource`` (a key / queue / bucket policy) or ``identity`` (attached to a role or managed policy).
A trust policy has no ``Resource`` element; ``as_lintable()`` adds the ARN of the role it protects
(its implicit resource) so a linter that requires one can still check actions, principals and
conditions.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
PARTITION = "aws"
OIDC_ID = "EXAMPLED539D4633E53DE1B71EXAMPLE"
KMS_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

DOC_TYPE = "aws_iam_policy_document"

# (resource type, attribute) of literal policy JSON, and the kind of policy it holds.
POLICY_ATTRIBUTES: dict[tuple[str, str], str] = {
    ("aws_iam_policy", "policy"): "identity",
    ("aws_iam_role_policy", "policy"): "identity",
    ("aws_iam_user_policy", "policy"): "identity",
    ("aws_iam_group_policy", "policy"): "identity",
    ("aws_iam_role", "assume_role_policy"): "trust",
    ("aws_iam_role", "inline_policy"): "identity",
    ("aws_kms_key", "policy"): "resource",
    ("aws_sqs_queue", "policy"): "resource",
    ("aws_sqs_queue_policy", "policy"): "resource",
    ("aws_sns_topic_policy", "policy"): "resource",
    ("aws_s3_bucket_policy", "policy"): "resource",
    ("aws_ecr_repository_policy", "policy"): "resource",
    ("aws_cloudwatch_log_resource_policy", "policy_document"): "resource",
}


class UnresolvedReference(LookupError):
    """A ``${...}`` expression this module has no placeholder for."""


@dataclass
class Policy:
    """One IAM policy document found in a stack."""

    address: str  # Terraform address: data.aws_iam_policy_document.x, or aws_iam_policy.y.policy
    kind: str  # trust | identity | resource
    document: dict[str, Any]  # IAM JSON, references replaced by placeholders
    used_by: list[str] = field(default_factory=list)  # "<address>.<attribute>" that reference it
    protected_role_arn: str | None = None  # for trust policies: the ARN of (the first) role using it

    def as_lintable(self) -> dict[str, Any]:
        """The document, with a trust policy's implicit resource (its role) made explicit."""
        doc = copy.deepcopy(self.document)
        if self.kind == "trust":
            for stmt in doc.get("Statement", []):
                if "Resource" not in stmt and "NotResource" not in stmt:
                    stmt["Resource"] = self.protected_role_arn or f"arn:{PARTITION}:iam::{ACCOUNT}:role/placeholder"
        return doc


# ----------------------------------------------------------------------------- references


def expressions(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, expression)`` of each top-level ``${...}`` in ``text`` (``$${`` is a literal)."""
    i = 0
    while True:
        i = text.find("${", i)
        if i < 0:
            return
        if i > 0 and text[i - 1] == "$":  # $${ escapes a literal ${
            i += 2
            continue
        depth, j, quoted = 0, i + 1, False
        while j < len(text):
            ch = text[j]
            if quoted:
                if ch == "\\":
                    j += 1
                elif ch == '"':
                    quoted = False
            elif ch == '"':
                quoted = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        else:
            raise UnresolvedReference(f"unterminated ${{...}} in {text!r}")
        yield i, j + 1, text[i + 2 : j]
        i = j + 1


_REF = re.compile(r"(?P<data>data\.)?(?P<type>[a-z0-9_]+)\.(?P<name>[A-Za-z0-9_-]+)(?P<attr>(?:\.[A-Za-z0-9_]+|\[\d+\])+)")
_REPLACE = re.compile(r'replace\(\s*(?P<inner>.+?)\s*,\s*"(?P<old>[^"]*)"\s*,\s*"(?P<new>[^"]*)"\s*\)')


class Resolver:
    """Turns the references of one stack into placeholder values of the right shape."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        providers = doc.get("provider", {}).get("aws", [{}])
        self.region = (providers[0] if isinstance(providers, list) else providers).get("region", "us-west-2")
        self._depth = 0

    # -- public
    def substitute(self, value: Any) -> Any:
        """``value`` (str, list, dict) with every ``${...}`` replaced by its placeholder."""
        if isinstance(value, str):
            out, last = [], 0
            for start, end, expr in expressions(value):
                out += [value[last:start], self.evaluate(expr)]
                last = end
            return ("".join(out) + value[last:]).replace("$${", "${")
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {self.substitute(k): self.substitute(v) for k, v in value.items()}
        return value

    def evaluate(self, expr: str) -> str:
        expr = expr.strip()
        m = _REPLACE.fullmatch(expr)
        if m:
            return self.evaluate(m["inner"]).replace(m["old"], m["new"])
        m = _REF.fullmatch(expr)
        if m:
            attr = re.sub(r"\[\d+\]", "", m["attr"]).lstrip(".")
            return self.placeholder(bool(m["data"]), m["type"], m["name"], attr)
        raise UnresolvedReference(f"no placeholder for ${{{expr}}}; teach tests/iam_policies.py its shape")

    # -- placeholders
    def _body(self, data: bool, rtype: str, name: str) -> dict:
        return self.doc.get("data" if data else "resource", {}).get(rtype, {}).get(name, {})

    def _literal(self, body: dict, key: str, default: str) -> str:
        """A resource's own ``key`` (e.g. its name), resolved, or ``default``."""
        value = body.get(key)
        if not isinstance(value, str):
            return default
        self._depth += 1
        try:
            if self._depth > 8:
                return default
            return self.substitute(value)
        finally:
            self._depth -= 1

    def placeholder(self, data: bool, rtype: str, name: str, attr: str) -> str:
        body = self._body(data, rtype, name)
        r, a, p = self.region, ACCOUNT, PARTITION
        own = self._literal(body, "name", name)
        if data:
            if rtype == "aws_caller_identity" and attr == "account_id":
                return a
            if rtype == "aws_partition":
                return {"partition": p, "dns_suffix": "amazonaws.com", "id": p}.get(attr) or self._fail(data, rtype, name, attr)
            if rtype == "aws_region" and attr in ("name", "region", "id"):
                return r
            if rtype == DOC_TYPE and attr == "json":
                raise UnresolvedReference(f"policy document data.{DOC_TYPE}.{name}.json nested in another value")
            return self._fail(data, rtype, name, attr)
        issuer_host = f"oidc.eks.{r}.amazonaws.com/id/{OIDC_ID}"
        arns = {
            "aws_iam_role": f"arn:{p}:iam::{a}:role/{own}",
            "aws_iam_policy": f"arn:{p}:iam::{a}:policy/{own}",
            "aws_iam_instance_profile": f"arn:{p}:iam::{a}:instance-profile/{own}",
            "aws_iam_openid_connect_provider": f"arn:{p}:iam::{a}:oidc-provider/{issuer_host}",
            "aws_eks_cluster": f"arn:{p}:eks:{r}:{a}:cluster/{own}",
            "aws_kms_key": f"arn:{p}:kms:{r}:{a}:key/{KMS_KEY_ID}",
            "aws_kms_alias": f"arn:{p}:kms:{r}:{a}:{own}",
            "aws_cloudwatch_log_group": f"arn:{p}:logs:{r}:{a}:log-group:{own}",
            "aws_sqs_queue": f"arn:{p}:sqs:{r}:{a}:{own}",
            "aws_cloudwatch_event_rule": f"arn:{p}:events:{r}:{a}:rule/{own}",
            "aws_sns_topic": f"arn:{p}:sns:{r}:{a}:{own}",
            "aws_s3_bucket": f"arn:{p}:s3:::{self._literal(body, 'bucket', name)}",
            "aws_vpc": f"arn:{p}:ec2:{r}:{a}:vpc/vpc-0123456789abcdef0",
            "aws_subnet": f"arn:{p}:ec2:{r}:{a}:subnet/subnet-0123456789abcdef0",
            "aws_security_group": f"arn:{p}:ec2:{r}:{a}:security-group/sg-0123456789abcdef0",
        }
        scalars = {
            ("aws_iam_role", "name"): own, ("aws_iam_role", "id"): own,
            ("aws_iam_role", "unique_id"): "AROAEXAMPLEEXAMPLE0001",
            ("aws_iam_openid_connect_provider", "url"): f"https://{issuer_host}",
            ("aws_eks_cluster", "name"): own, ("aws_eks_cluster", "id"): own,
            ("aws_eks_cluster", "identity.oidc.issuer"): f"https://{issuer_host}",
            ("aws_eks_cluster", "vpc_config.cluster_security_group_id"): "sg-0123456789abcdef0",
            ("aws_kms_key", "key_id"): KMS_KEY_ID, ("aws_kms_key", "id"): KMS_KEY_ID,
            ("aws_sqs_queue", "name"): own,
            ("aws_sqs_queue", "id"): f"https://sqs.{r}.amazonaws.com/{a}/{own}",
            ("aws_sqs_queue", "url"): f"https://sqs.{r}.amazonaws.com/{a}/{own}",
            ("aws_cloudwatch_log_group", "name"): own,
            ("aws_vpc", "id"): "vpc-0123456789abcdef0",
            ("aws_subnet", "id"): "subnet-0123456789abcdef0",
            ("aws_security_group", "id"): "sg-0123456789abcdef0",
        }
        if attr == "arn" and rtype in arns:
            return arns[rtype]
        if (rtype, attr) in scalars:
            return scalars[(rtype, attr)]
        return self._fail(data, rtype, name, attr)

    @staticmethod
    def _fail(data: bool, rtype: str, name: str, attr: str) -> str:
        prefix = "data." if data else ""
        raise UnresolvedReference(f"no placeholder for ${{{prefix}{rtype}.{name}.{attr}}}; "
                                  "teach tests/iam_policies.py (Resolver.placeholder) its shape")


# ----------------------------------------------------------------------------- policy documents


def _one_or_list(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _principals(blocks: list[dict]) -> Any:
    if any(b.get("type") == "*" for b in blocks):
        return "*"
    out: dict[str, list[str]] = {}
    for block in blocks:
        out.setdefault(block["type"], []).extend(block["identifiers"])
    return {k: _one_or_list(v) for k, v in out.items()}


def _statement(block: dict) -> dict[str, Any]:
    stmt: dict[str, Any] = {}
    if "sid" in block:
        stmt["Sid"] = block["sid"]
    stmt["Effect"] = block.get("effect", "Allow")
    for key, element in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
        if key in block:
            stmt[element] = _principals(block[key])
    for key, element in (("actions", "Action"), ("not_actions", "NotAction"),
                         ("resources", "Resource"), ("not_resources", "NotResource")):
        if key in block:
            stmt[element] = _one_or_list(list(block[key]))
    if block.get("condition"):
        cond: dict[str, dict[str, list[str]]] = {}
        for c in block["condition"]:
            cond.setdefault(c["test"], {}).setdefault(c["variable"], []).extend(c["values"])
        stmt["Condition"] = {t: {k: _one_or_list(v) for k, v in pairs.items()} for t, pairs in cond.items()}
    unknown = set(block) - {"sid", "effect", "principals", "not_principals", "actions", "not_actions",
                            "resources", "not_resources", "condition"}
    if unknown:
        raise ValueError(f"statement block keys not understood: {sorted(unknown)}")
    return stmt


def _doc_ref(value: Any) -> str | None:
    """The policy document name when ``value`` is exactly ``${data.aws_iam_policy_document.<name>.json}``."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{data\." + DOC_TYPE + r"\.([A-Za-z0-9_-]+)\.json\}", value)
        return m[1] if m else None
    return None


def _walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v, path)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, f"{path}.{k}" if path else k)


def _document(body: dict, documents: dict[str, dict]) -> dict[str, Any]:
    """IAM JSON of one ``aws_iam_policy_document`` body (raw, references still in)."""
    statements: list[dict[str, Any]] = []
    for source in body.get("source_policy_documents", []):
        name = _doc_ref(source)
        if name is None:
            raise UnresolvedReference(f"source_policy_documents entry {source!r} is not a policy document reference")
        statements += _document(documents[name], documents)["Statement"]
    statements += [_statement(b) for b in body.get("statement", [])]
    for override in body.get("override_policy_documents", []):
        name = _doc_ref(override)
        if name is None:
            raise UnresolvedReference(f"override_policy_documents entry {override!r} is not a policy document reference")
        for stmt in _document(documents[name], documents)["Statement"]:
            same = [i for i, s in enumerate(statements) if "Sid" in stmt and s.get("Sid") == stmt["Sid"]]
            if same:
                statements[same[0]] = stmt
            else:
                statements.append(stmt)
    doc: dict[str, Any] = {"Version": body.get("version", "2012-10-17"), "Statement": statements}
    if "policy_id" in body:
        doc["Id"] = body["policy_id"]
    return doc


def extract(doc: dict) -> list[Policy]:
    """Every IAM policy document of one synthesized stack (``cdk.tf.json`` parsed)."""
    resolver = Resolver(doc)
    documents: dict[str, dict] = doc.get("data", {}).get(DOC_TYPE, {})
    resources: dict[str, dict[str, dict]] = doc.get("resource", {})

    # Who uses each policy document, and as what.
    uses: dict[str, list[tuple[str, str, str]]] = {name: [] for name in documents}  # name -> (rtype, rname, attr)
    for rtype, items in resources.items():
        for rname, body in items.items():
            for path, text in _walk_strings(body, ""):
                for m in re.finditer(r"data\." + DOC_TYPE + r"\.([A-Za-z0-9_-]+)\.json", text):
                    uses.setdefault(m[1], []).append((rtype, rname, path))

    policies: list[Policy] = []
    for name, body in documents.items():
        kinds = {POLICY_ATTRIBUTES.get((rtype, attr.split(".")[0]), "identity") for rtype, _, attr in uses[name]}
        raw = _document(body, documents)
        if len(kinds) > 1:
            raise ValueError(f"data.{DOC_TYPE}.{name} is used as {sorted(kinds)} policy at once")
        kind = kinds.pop() if kinds else _guess_kind(raw)
        role_arn = None
        for rtype, rname, attr in uses[name]:
            if rtype == "aws_iam_role" and attr == "assume_role_policy":
                role_arn = resolver.placeholder(False, "aws_iam_role", rname, "arn")
                break
        policies.append(Policy(
            address=f"data.{DOC_TYPE}.{name}", kind=kind, document=resolver.substitute(raw),
            used_by=[f"{rtype}.{rname}.{attr}" for rtype, rname, attr in uses[name]], protected_role_arn=role_arn,
        ))

    # Literal JSON in policy attributes.
    for (rtype, attr), kind in POLICY_ATTRIBUTES.items():
        for rname, body in resources.get(rtype, {}).items():
            values = body.get(attr)
            if attr == "inline_policy":
                values = [b.get("policy") for b in (values or [])]
            for i, value in enumerate(values if isinstance(values, list) else [values]):
                if value is None or _doc_ref(value) is not None:
                    continue
                address = f"{rtype}.{rname}.{attr}" + (f"[{i}]" if isinstance(values, list) else "")
                if isinstance(value, str) and value.lstrip().startswith("${jsonencode("):
                    raise UnresolvedReference(f"{address} is a jsonencode() expression; build it with "
                                              "constructs.policy.policy_document() so it can be linted")
                if not isinstance(value, str) or not value.lstrip().startswith("{"):
                    raise UnresolvedReference(f"{address} is neither policy JSON nor a policy document reference: "
                                              f"{str(value)[:120]!r}")
                role_arn = resolver.placeholder(False, rtype, rname, "arn") if kind == "trust" else None
                policies.append(Policy(address=address, kind=kind, document=json.loads(resolver.substitute(value)),
                                       used_by=[address], protected_role_arn=role_arn))
    return policies


def _guess_kind(document: dict) -> str:
    stmts = document.get("Statement", [])
    if stmts and all("Principal" in s and "Resource" not in s for s in stmts):
        return "trust"
    if any("Principal" in s for s in stmts):
        return "resource"
    return "identity"


__all__ = ["ACCOUNT", "PARTITION", "Policy", "Resolver", "UnresolvedReference", "expressions", "extract"]
