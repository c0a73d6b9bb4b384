"""IAM policy documents as ``data.aws_iam_policy_document`` built from statements written in IAM's
own vocabulary (``Sid``/``Effect``/``Action``/``Resource``/``Principal``/``Condition``).

Statements read like upstream's templates, yet Terraform (not a hand-pasted JSON string) renders
them: ``${...}`` references resolve, the provider normalises the JSON (no perpetual diffs), and
tests read the typed statement blocks in the synthesized JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import DataAwsIamPolicyDocument
from constructs import Construct

Statement = Mapping[str, Any]


@dataclass(frozen=True)
class AwsContext:
    """Where the stack deploys: tokens from data sources (account, partition, the caller's ARN) and
    the region."""

    account_id: str
    partition: str
    region: str
    caller_arn: str = ""


def _list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _values(values: Any) -> list[str]:
    items = values if isinstance(values, (list, tuple)) else [values]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in items]


def _principals(principal: str | Mapping[str, str | Sequence[str]]) -> list[dict[str, Any]]:
    if principal == "*":
        return [{"type": "*", "identifiers": ["*"]}]
    return [{"type": kind, "identifiers": _list(ids)} for kind, ids in principal.items()]


def _statement(stmt: Statement) -> dict[str, Any]:
    known = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}
    unknown = set(stmt) - known
    if unknown:
        raise ValueError(f"unsupported statement keys {sorted(unknown)}; use {sorted(known)}")
    out: dict[str, Any] = {"effect": stmt.get("Effect", "Allow"), "actions": _list(stmt["Action"])}
    if "Sid" in stmt:
        out["sid"] = stmt["Sid"]
    if "Resource" in stmt:
        out["resources"] = _list(stmt["Resource"])
    if "Principal" in stmt:
        out["principals"] = _principals(stmt["Principal"])
    if "Condition" in stmt:
        out["condition"] = [
            {"test": test, "variable": variable, "values": _values(values)}
            for test, pairs in stmt["Condition"].items()
            for variable, values in pairs.items()
        ]
    return out


def policy_document(scope: Construct, id_: str, statements: Sequence[Statement]) -> DataAwsIamPolicyDocument:
    """A ``data.aws_iam_policy_document`` with ``statements``; use its ``.json`` as the policy."""
    return DataAwsIamPolicyDocument(scope, id_, statement=[_statement(s) for s in statements])


def service_trust(scope: Construct, id_: str, service: str) -> str:
    """Trust policy JSON letting one AWS service (``eks.amazonaws.com``) assume a role."""
    return policy_document(scope, id_, [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": service},
    }]).json
