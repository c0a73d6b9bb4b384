"""The change-impact rung's cases and what it reads from a plan (tests/test_emulator.py, rung a).

After the emulator environment is applied, every key of the configuration reference that an
operator may change on day two gets one realistic new value (``CASES``); each variant is synthesized
(tests/emulator/synth_variants.py) and planned against the applied state, in ``exec`` mode (the
applied one) and in ``token`` mode (Terraform Cloud's). From each JSON plan (``terraform show -json``)
``classify`` sorts every change: updated in place, replaced create-before-destroy, replaced
destroy-first, created, deleted, and every data source read deferred to apply. ``in_cluster`` says
what moves inside the cluster, from the synthesized Helm values (which the emulator copy strips):
which release changes, and whether the EC2NodeClass or a NodePool template changes, which makes
Karpenter replace those nodes (DESIGN fact 21; the NodePool hash covers ``spec.template`` except its
requirements, kubernetes-sigs/karpenter ``pkg/apis/v1/nodepool.go``; the EC2NodeClass hash covers its
spec except the selector terms, ``amiFamily``, ``kubelet`` and ``ipPrefixCount``, whose AMI selection
drifts through the resolved AMIs instead: aws/karpenter-provider-aws ``pkg/apis/v1/ec2nodeclass.go``).

``violations`` holds the invariants every case must keep; ``table`` renders the README's "What a change
does" table from the results (between its markers; the rung fails when the README's copy is stale,
``UPDATE_README=1`` rewrites it).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.emulator.synth_variants import REMOVE

README = Path(__file__).resolve().parent.parent.parent / "README.md"
START, END = "<!-- change-impact:start -->", "<!-- change-impact:end -->"

# What a change must never replace or delete unless the case asks for it (``Case.deletes``).
STATEFUL = ("aws_vpc", "aws_subnet", "aws_eks_cluster", "aws_kms_key", "aws_kms_alias",
            "aws_iam_openid_connect_provider", "aws_sqs_queue", "aws_cloudwatch_log_group", "aws_iam_role",
            "aws_eks_access_entry", "aws_nat_gateway", "aws_eip", "aws_internet_gateway", "terraform_data")
# Data sources the Kubernetes and Helm providers take their credentials from.
CREDENTIALS = ("data.aws_eks_cluster_auth.",)
# Attributes of the cluster the providers' host and CA come from.
CONNECTION = ("endpoint", "certificate_authority")
TAG_ATTRIBUTES = {"tags", "tags_all"}
# resources whose only argument that can be unknown at plan is a policy document
POLICY_HOLDERS = ("aws_iam_policy", "aws_iam_role", "aws_iam_role_policy", "aws_sqs_queue_policy", "aws_kms_key")


@dataclasses.dataclass(frozen=True)
class Case:
    """One day-two change: ``changes`` to tests/environments/emulator.yaml, written as a user writes
    the edit (dotted keys; ``None`` is YAML's null, ``REMOVE`` deletes the line; tests/emulator/synth_variants.py ``changed``). ``deletes``: address prefixes the change asks to delete (a removed admin, the NAT
    gateways of a single-NAT switch). ``refused``: the plan must fail with these words (a key that
    must never change after creation)."""

    key: str
    example: str
    changes: dict[str, Any]
    deletes: tuple[str, ...] = ()
    refused: str | None = None
    token: bool = False  # also planned in token mode (where the cluster or its node group changes)
    drops_exec_only: bool = False  # deletes the destroy-time waits that need the aws CLI (token mode has none)
    # planned against an environment applied with these changes first (a switch back): ``changes`` are then
    # relative to tests/environments/emulator.yaml, usually none
    applied: dict[str, Any] | None = None
    note: str = ""  # what the plan cannot show, said in the cluster column (e.g. where later plans must run)

    @property
    def name(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.key} {self.example}".lower()).strip("-")[:60]


POOL = "karpenter.nodepools.stateless"
CASES: tuple[Case, ...] = (
    Case("name", "platform-emu -> platform-emu2", {"name": "platform-emu2"}, refused="name cannot change"),
    Case("region", "us-east-1 -> us-west-2", {"region": "us-west-2"}, refused="region cannot change"),
    Case("tags", "add CostCenter: platform", {"tags": {"CostCenter": "platform"}}, token=True),
    Case("network.vpc_cidr", "10.0.0.0/16 -> 10.1.0.0/16", {"network.vpc_cidr": "10.1.0.0/16"},
         refused="vpc_cidr cannot change"),
    Case("network.az_count", "3 -> 4 (adds us-east-1d)", {"network.az_count": 4}, token=True),
    Case("network.az_count", "3 -> 2 (removes us-east-1c)", {"network.az_count": 2}, token=True, deletes=tuple(
        f"{kind}.network_{what}-us-east-1c" for kind, what in (
            ("aws_subnet", "private"), ("aws_subnet", "public"), ("aws_nat_gateway", "nat"), ("aws_eip", "nat-eip"),
            ("aws_route_table", "private"), ("aws_route", "private"), ("aws_route_table_association", "private"),
            ("aws_route_table_association", "public")))),
    Case("network.existing", "own VPC -> an existing one", {"network.single_nat_gateway": REMOVE, "network.existing": {
        "vpc_id": "vpc-0000000000000000e", "private_subnet_ids": ["subnet-00000000000000001", "subnet-00000000000000002"]}},
        refused="network.existing cannot change"),
    Case("network.availability_zones", "the same zones, listed", {
        "network.availability_zones": ["us-east-1a", "us-east-1b", "us-east-1c"]}),
    Case("network.availability_zones", "the same zones, reordered", {
        "network.availability_zones": ["us-east-1c", "us-east-1a", "us-east-1b"]}),
    Case("network.private_subnet_newbits", "3 -> 4", {"network.private_subnet_newbits": 4},
         refused="private_subnet_newbits cannot change"),
    Case("network.public_subnet_newbits", "8 -> 9", {"network.public_subnet_newbits": 9},
         refused="public_subnet_newbits cannot change"),
    Case("network.single_nat_gateway", "false -> true", {"network.single_nat_gateway": True},
         deletes=("aws_nat_gateway.network_nat-us-east-1b", "aws_nat_gateway.network_nat-us-east-1c",
                  "aws_eip.network_nat-eip-us-east-1b", "aws_eip.network_nat-eip-us-east-1c")),
    Case("network.flow_log_retention_days", "365 -> 90", {"network.flow_log_retention_days": 90}),
    Case("cluster.version", "1.35 -> 1.36", {"cluster.version": "1.36"}, token=True),
    Case("cluster.support_type", "STANDARD -> EXTENDED", {"cluster.support_type": "EXTENDED"}),
    Case("cluster.allow_past_end_of_support", "false -> true", {"cluster.allow_past_end_of_support": True}),
    Case("cluster.endpoint_public_access", "true -> false", {"cluster.endpoint_public_access": False},
         note="from then on every plan must run where the private endpoint is reachable (a Terraform Cloud agent "
              "or CI runner in the VPC or a network routed to it, a VPN: `cluster.private_access_cidrs`); "
              "Terraform Cloud's own runners cannot (README: Terraform Cloud)"),
    Case("cluster.private_access_cidrs", "add 10.20.0.0/24 (an agent's subnet)",
         {"cluster.private_access_cidrs": ["10.20.0.0/24"]}),
    Case("cluster.public_access_cidrs", "0.0.0.0/0 -> 203.0.113.0/24",
         {"cluster.public_access_cidrs": ["203.0.113.0/24"]}),
    Case("cluster.admin_principal_arns", "add a role", {"cluster.admin_principal_arns": [
        "arn:aws:iam::123456789012:role/platform-emu-admins", "arn:aws:iam::123456789012:role/platform-emu-ci"]}),
    Case("cluster.admin_principal_arns", "remove the role", {"cluster.admin_principal_arns": []},
         deletes=("aws_eks_access_entry.cluster_admin-", "aws_eks_access_policy_association.cluster_admin-")),
    Case("cluster.log_retention_days", "365 -> 731", {"cluster.log_retention_days": 731}),
    Case("cluster.pod_credentials", "irsa -> pod_identity", {"cluster.pod_credentials": "pod_identity"}, token=True,
         note="restarts the Karpenter and EBS CSI controllers with Pod Identity credentials (after the agent and "
              "the associations exist); no node replaced; your own IRSA roles: nothing to do (the OIDC provider "
              "stays)"),
    Case("cluster.pod_credentials", "pod_identity -> irsa", {}, applied={"cluster.pod_credentials": "pod_identity"},
         token=True, deletes=("aws_eks_addon.addons_eks-pod-identity-agent", "aws_eks_pod_identity_association."),
         note="restarts the Karpenter and EBS CSI controllers with IRSA credentials (Terraform deletes the "
              "associations and the agent meanwhile: the running pods keep the credentials they hold until they "
              "roll); no node replaced; your own roles: nothing to do"),
    Case("cluster.node_instance_type", "t3.large -> m6i.large", {"cluster.node_instance_type": "m6i.large"}, token=True),
    Case("cluster.node_instance_type", "t3.large -> m7g.large (Graviton)",
         {"cluster.node_instance_type": "m7g.large"}),
    Case("cluster.node_desired_size", "1 -> 2 (max 2 -> 3)",
         {"cluster.node_desired_size": 2, "cluster.node_max_size": 3}),
    Case("cluster.node_min_size", "1 -> 2", {"cluster.node_min_size": 2, "cluster.node_desired_size": 2}),
    Case("cluster.node_disk_size_gb", "50 -> 80", {"cluster.node_disk_size_gb": 80}),
    Case("karpenter.version", "1.14.1 -> 1.13.0", {"karpenter.version": "1.13.0"}),
    Case("karpenter.replicas", "1 -> 2 (2 controller nodes)", {
        "karpenter.replicas": 2, "cluster.node_min_size": 2, "cluster.node_desired_size": 2}),
    Case("karpenter.ami_alias", "al2023@v20260714 -> al2023@v20260625", {"karpenter.ami_alias": "al2023@v20260625"}),
    Case("karpenter.root_volume_size_gi", "100 -> 200", {"karpenter.root_volume_size_gi": 200}),
    Case("karpenter.node_tags", "add CostCenter: platform", {"karpenter.node_tags": {"CostCenter": "platform"}}),
    # not cpu 1 -> 2: with CoreDNS, the EBS CSI controller and the DaemonSets that no longer fits one t3.large
    Case("karpenter.controller_resources", "memory 1Gi -> 2Gi", {"karpenter.controller_resources": {"memory": "2Gi"}}),
    Case("karpenter.log_level", "info -> debug", {"karpenter.log_level": "debug"}),
    Case("karpenter.helm_timeout_seconds", "900 -> 1200", {"karpenter.helm_timeout_seconds": 1200}),
    Case("karpenter.nodepools", "add a pool", {"karpenter.nodepools.batch": {
        "instance_categories": ["c"], "labels": {"workload-type": "batch"}}}),
    Case("karpenter.nodepools", "remove the gpu pool", {"karpenter.nodepools.gpu": None}),
    Case(f"{POOL[10:]}.capacity_types", "[spot, on-demand] -> [on-demand]",
         {f"{POOL}.capacity_types": ["on-demand"]}),
    Case(f"{POOL[10:]}.instance_categories", "[c, m] -> [c, m, r]", {f"{POOL}.instance_categories": ["c", "m", "r"]}),
    Case(f"{POOL[10:]}.min_generation", "5 -> 6", {f"{POOL}.min_generation": 6}),
    Case(f"{POOL[10:]}.cpu_limit", "100 -> 200", {f"{POOL}.cpu_limit": 200}),
    Case(f"{POOL[10:]}.labels", "add team: web", {f"{POOL}.labels": {"team": "web"}}),
    Case(f"{POOL[10:]}.taints", "add one", {f"{POOL}.taints": ["example.com/dedicated=web:NoSchedule"]}),
    Case(f"{POOL[10:]}.consolidation_policy", "-> WhenEmpty", {f"{POOL}.consolidation_policy": "WhenEmpty"}),
    Case(f"{POOL[10:]}.expire_after", "720h -> 336h", {f"{POOL}.expire_after": "336h"}),
    Case(f"{POOL[10:]}.termination_grace_period", "1h -> 2h", {f"{POOL}.termination_grace_period": "2h"}),
    Case(f"{POOL[10:]}.disruption_budget_nodes", "10% -> 20%", {f"{POOL}.disruption_budget_nodes": "20%"}),
    Case(f"{POOL[10:]}.weight", "50 -> 60", {f"{POOL}.weight": 60}),
    Case("kubernetes_auth.mode", "exec -> token", {"kubernetes_auth.mode": "token"}, drops_exec_only=True),
)


def variants() -> dict[str, dict[str, Any]]:
    """``{variant: changes}`` for tests/emulator/synth_variants.py: each case in exec mode (the applied
    one) and, where it differs, in token mode; plus the unchanged stack in token mode."""
    out: dict[str, dict[str, Any]] = {"token": {"kubernetes_auth.mode": "token"}}
    for case in CASES:  # refused cases synthesize too: the refusal is the plan's
        out[case.name] = case.changes
        if case.token:
            out[f"{case.name}.token"] = {**case.changes, "kubernetes_auth.mode": "token"}
        if case.applied is not None:
            out[f"{case.name}.applied"] = case.applied
    return out


# ----------------------------------------------------------------------------- reading a plan


@dataclasses.dataclass
class Impact:
    """What one plan does, by kind of change: ``{address: changed attributes}`` for updates, lists
    of addresses otherwise; ``deferred``: data sources read during apply, with Terraform's reason."""

    updated: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # updates whose only differences are values known at apply (a policy document read again): the
    # plan shows them as updates; the apply changes nothing unless the value really moved
    pending: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    replaced_first: list[str] = dataclasses.field(default_factory=list)  # create before destroy
    replaced_destroy_first: list[str] = dataclasses.field(default_factory=list)
    created: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    deferred: dict[str, str] = dataclasses.field(default_factory=dict)
    unknown_connection: list[str] = dataclasses.field(default_factory=list)

    def addresses(self) -> set[str]:
        return {*self.updated, *self.pending, *self.replaced_first, *self.replaced_destroy_first, *self.created, *self.deleted}


def _differences(before: Any, after: Any, unknown: Any, path: str, out: dict[str, str]) -> None:
    """Record in ``out`` each differing leaf path: ``changed``, or ``unknown`` (known only at apply;
    the value may well stay what it is)."""
    if unknown is True:
        out[path] = "unknown" if before is not None else "changed"
    elif isinstance(before, dict) and isinstance(after, dict):
        unknown = unknown if isinstance(unknown, dict) else {}
        for k in sorted({*before, *after, *unknown}):
            _differences(before.get(k), after.get(k), unknown.get(k), f"{path}.{k}" if path else k, out)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after) and (
            len(before) == 1 and isinstance(before[0], dict)):  # a nested block: name its attributes
        _differences(before[0], after[0], (unknown or [None])[0] if isinstance(unknown, list) else None, path, out)
    elif before != after and not (before in (None, [], {}) and after in (None, [], {})):
        out[path] = "changed"


def _attributes(change: dict, kind: str) -> list[str]:
    found: dict[str, str] = {}
    _differences(change.get("before") or {}, change.get("after") or {}, change.get("after_unknown") or {}, "", found)
    return sorted(p for p, k in found.items() if k == kind)


def classify(plan: dict) -> Impact:
    impact = Impact()
    for rc in plan.get("resource_changes", []):
        address, change = rc["address"], rc["change"]
        actions = change["actions"]
        if rc["mode"] == "data":
            if actions == ["read"]:
                impact.deferred[address] = rc.get("action_reason", "")
            continue
        if actions == ["update"]:
            changed = _attributes(change, "changed")
            if changed:
                impact.updated[address] = changed
            else:
                impact.pending[address] = _attributes(change, "unknown")
        elif actions == ["create", "delete"]:
            impact.replaced_first.append(address)
        elif actions == ["delete", "create"]:
            impact.replaced_destroy_first.append(address)
        elif actions == ["create"]:
            impact.created.append(address)
        elif actions == ["delete"]:
            impact.deleted.append(address)
        if rc["type"] == "aws_eks_cluster" and actions != ["no-op"]:
            unknown = change.get("after_unknown") or {}
            impact.unknown_connection += [f"{address}.{a}" for a in CONNECTION if unknown.get(a) is True]
    return impact


def _asked(address: str, case: Case) -> bool:
    return any(address.startswith(prefix) for prefix in case.deletes)


def violations(case: Case, impact: Impact, *, mode: str, exec_only: set[str] = frozenset()) -> list[str]:
    """The invariants of issue 15, as sentences naming the addresses that break them. ``exec_only``:
    what a token-mode plan of an exec-mode state deletes by design (the destroy-time waits that need
    the aws CLI)."""
    found = []
    impact = dataclasses.replace(impact, deleted=[a for a in impact.deleted if a not in exec_only])
    for address in [*impact.replaced_first, *impact.replaced_destroy_first, *impact.deleted]:
        if address.split(".")[0] in STATEFUL and not _asked(address, case):
            found.append(f"{address} (stateful) is replaced or deleted")
    for address in impact.replaced_destroy_first:
        found.append(f"{address} is destroyed before its successor exists")
    for address, reason in impact.deferred.items():
        if address.startswith(CREDENTIALS):
            found.append(f"{address} (a provider credential) is read during apply ({reason}) in {mode} mode")
    for address in impact.unknown_connection:
        found.append(f"{address} (the providers' host/CA) is unknown at plan")
    for address in impact.deleted:
        if not _asked(address, case) and address.split(".")[0] != "terraform_data":
            found.append(f"{address} is deleted, which the change does not ask for")
    return found


# ----------------------------------------------------------------------------- inside the cluster


def _releases(doc: dict) -> dict[str, dict]:
    return {body["name"]: body for body in doc.get("resource", {}).get("helm_release", {}).values()}


def _manifests(doc: dict) -> dict[tuple[str, str], dict]:
    release = _releases(doc).get("karpenter-nodepools")
    if not release:
        return {}
    values = yaml.safe_load(release["values"][0])
    return {(m["kind"], m["metadata"]["name"]): m for m in values["manifests"]}


NODE_CLASS_UNHASHED = ("amiSelectorTerms", "subnetSelectorTerms", "securityGroupSelectorTerms",
                       "capacityReservationSelectorTerms", "amiFamily", "kubelet", "ipPrefixCount")


def in_cluster(base: dict, variant: dict) -> list[str]:
    """What Karpenter and Helm do, from the two stacks' Helm releases (unstripped JSON)."""
    said: list[str] = []
    old, new = _releases(base), _releases(variant)
    for name in sorted({*old, *new}):
        if name not in new:
            said.append(f"uninstalls {name}")
        elif name not in old:
            said.append(f"installs {name}")
        elif name != "karpenter-nodepools":
            keys = [k for k in ("version", "values", "timeout") if old[name].get(k) != new[name].get(k)]
            if keys == ["timeout"]:
                said.append(f"{name}: Helm's wait only (no object changes)")
            elif keys:
                said.append(f"upgrades {name} ({', '.join(keys)})")
    before, after = _manifests(base), _manifests(variant)
    rolls: list[str] = []
    for kind, obj in sorted({*before, *after}):
        o, n = before.get((kind, obj)), after.get((kind, obj))
        if o == n:
            continue
        if kind == "EC2NodeClass":
            if o and n and o["spec"].get("amiSelectorTerms") != n["spec"].get("amiSelectorTerms"):
                rolls.append("replaces every Karpenter node (new AMI), within each pool's disruption budget")
            hashed = lambda m: {k: v for k, v in (m or {}).get("spec", {}).items() if k not in NODE_CLASS_UNHASHED}  # noqa: E731
            if hashed(o) != hashed(n):
                rolls.append("replaces every Karpenter node (EC2NodeClass drift), within each pool's disruption budget")
        elif o is None:
            rolls.append(f"adds NodePool {obj} (no node replaced)")
        elif n is None:
            rolls.append(f"deletes NodePool {obj}: drains and terminates its nodes")
        else:
            template = lambda m: {**m["spec"]["template"], "spec": {k: v for k, v in m["spec"]["template"]["spec"].items()  # noqa: E731
                                                                   if k != "requirements"}}
            if template(o) != template(n):
                rolls.append(f"replaces the {obj} pool's nodes (template drift)")
            elif o["spec"]["template"]["spec"]["requirements"] != n["spec"]["template"]["spec"]["requirements"]:
                rolls.append(f"{obj}: new nodes follow the new requirements; a node outside them drifts and is replaced "
                             "(widening replaces none)")
            else:
                rolls.append(f"{obj}: no node replaced (disruption, limits or weight only)")
    return said + rolls


# ----------------------------------------------------------------------------- the README table


def _kind(address: str) -> str:
    return address.split(".")[0].removeprefix("aws_")


def terraform_words(case: Case, impact: Impact | None, refusal: str | None) -> str:
    if refusal is not None:
        return f"refused at plan: {refusal}"
    assert impact is not None
    parts = []
    tags_only = [a for a, attrs in impact.updated.items() if attrs and {x.split(".")[0] for x in attrs} <= TAG_ATTRIBUTES]
    others = {a: attrs for a, attrs in impact.updated.items() if a not in tags_only}
    if others:
        parts.append("updates in place: " + ", ".join(
            f"{_kind(a)} ({', '.join(x for x in attrs if x.split('.')[0] not in TAG_ATTRIBUTES) or 'tags'})"
            for a, attrs in sorted(others.items())))
    if tags_only:
        parts.append(f"tags of {len(tags_only)} resources in place")
    if impact.pending:
        parts.append(f"{len(impact.pending)} policy documents shown as known after apply (read again; unchanged)"
                     if all(a.split(".")[0] in POLICY_HOLDERS for a in impact.pending) else
                     "values known after apply: " + ", ".join(sorted({_kind(a) for a in impact.pending})))
    if impact.replaced_first:
        parts.append("replaces, new one first: " + ", ".join(sorted({_kind(a) for a in impact.replaced_first})))
    if impact.replaced_destroy_first:
        parts.append("replaces, old one first: " + ", ".join(sorted({_kind(a) for a in impact.replaced_destroy_first})))
    if impact.created:
        parts.append("creates " + ", ".join(sorted(_count(map(_kind, impact.created)))))
    if impact.deleted:
        parts.append("deletes " + ", ".join(sorted(_count(map(_kind, impact.deleted)))))
    return "; ".join(parts) or "nothing"


def _count(kinds) -> list[str]:
    counts: dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    return [f"{k} ×{n}" if n > 1 else k for k, n in counts.items()]


def table(rows: list[tuple[Case, str, str]]) -> str:
    lines = ["| key | example change | what Terraform does | what moves in the cluster |", "|---|---|---|---|"]
    for case, terraform, cluster in rows:
        cluster = "; ".join(p for p in (cluster, case.note) if p)
        lines.append(f"| `{case.key}` | {case.example} | {terraform} | {cluster or 'nothing'} |")
    return "\n".join(lines)


def readme_block(text: str) -> str:
    start, end = text.index(START) + len(START), text.index(END)
    return text[start:end].strip("\n")


def write_readme_block(block: str) -> None:
    text = README.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    README.write_text(text[:start] + "\n" + block + "\n" + text[end:])


def refusal_words(case: Case, output: str) -> str:
    """The precondition's message for ``case`` from a failed plan's output, on one line, without the
    values (the example column has them)."""
    text = " ".join(line.strip(" │╷╵") for line in output.splitlines())
    text = re.sub(r"\s+", " ", text)
    start = min((i for i in (text.find(f"{case.key} cannot change"), text.find(f"{case.key} /")) if i >= 0), default=-1)
    if start < 0:
        return json.dumps(output[-400:])
    message = re.sub(r" \(from .*? to .*?\)", "", text[start:])
    return message.split(". ")[0].rstrip(".")
