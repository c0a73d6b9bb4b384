"""What the emulator holds, read through its AWS APIs with boto3 (never from Terraform's state).

``inventory`` lists, per kind, the ids of every resource a stack like ours can create, leaving out
what the emulator itself provides or the account holds for every stack (the default VPC with its
subnets/route table/IGW/SG, AWS-managed IAM policies, service-linked roles, ``alias/aws/*`` KMS aliases
and the AWS-managed keys they name, the state-bootstrap's kept-logs key and alias, KMS keys already
pending deletion, deleted NATs).
Ids are the ones ``terraform import`` takes (node groups, access entries and add-ons as
``cluster:name``, Pod Identity associations as ``cluster,association id``). ``expected_counts`` derives from a Terraform JSON document how many of each kind a clean apply
must leave, so duplicates (an interrupted apply re-creating a VPC) show up as a count mismatch;
``retained`` what a destroy of it leaves on purpose (``skip_destroy`` log groups).
"""

from __future__ import annotations

from typing import Any

from model.names import KEPT_LOGS_KEY_ALIAS
from tests.emulator.server import HARNESS_PATH, Emulator


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
    return getattr(client, operation)(**kwargs).get(key, [])


def inventory(emu: Emulator) -> dict[str, list[str]]:
    ec2 = emu.client("ec2")
    vpcs = _pages(ec2, "describe_vpcs", "Vpcs")
    default_vpcs = {v["VpcId"] for v in vpcs if v.get("IsDefault")}
    ours = lambda vpc_id: vpc_id not in default_vpcs  # noqa: E731

    found: dict[str, list[str]] = {
        "vpcs": [v["VpcId"] for v in vpcs if ours(v["VpcId"])],
        "subnets": [s["SubnetId"] for s in _pages(ec2, "describe_subnets", "Subnets") if ours(s["VpcId"])],
        "internet_gateways": [
            g["InternetGatewayId"] for g in _pages(ec2, "describe_internet_gateways", "InternetGateways")
            if not any(a.get("VpcId") in default_vpcs for a in g.get("Attachments", []))
        ],
        "nat_gateways": [
            n["NatGatewayId"] for n in _pages(ec2, "describe_nat_gateways", "NatGateways")
            if n.get("State") not in ("deleted", "deleting", "failed")
        ],
        "eips": [a.get("AllocationId") or a["PublicIp"] for a in ec2.describe_addresses().get("Addresses", [])],
        "route_tables": [r["RouteTableId"] for r in _pages(ec2, "describe_route_tables", "RouteTables")
                         if ours(r.get("VpcId"))],
        "security_groups": [g["GroupId"] for g in _pages(ec2, "describe_security_groups", "SecurityGroups")
                            if ours(g.get("VpcId"))],
        "flow_logs": [f["FlowLogId"] for f in _pages(ec2, "describe_flow_logs", "FlowLogs")],
        # e.g. Karpenter-launched nodes: never in Terraform's state, must not outlive the stack
        "ec2_instances": [i["InstanceId"] for r in _pages(ec2, "describe_instances", "Reservations")
                          for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")],
    }

    iam = emu.client("iam")
    # service-linked roles are the account's (the state-bootstrap stack's), never an environment's
    found["iam_roles"] = [r["RoleName"] for r in _pages(iam, "list_roles", "Roles")
                          if not r["Path"].startswith("/aws-service-role/")]
    # the harness's own identities (Emulator.enforce_iam) live under HARNESS_PATH: not the stack's
    found["iam_policies"] = [p["Arn"] for p in _pages(iam, "list_policies", "Policies", Scope="Local")
                             if p.get("Path") != HARNESS_PATH]
    found["iam_instance_profiles"] = [p["InstanceProfileName"] for p in
                                      _pages(iam, "list_instance_profiles", "InstanceProfiles")]
    found["oidc_providers"] = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]

    eks = emu.client("eks")
    clusters = _pages(eks, "list_clusters", "clusters")
    found["eks_clusters"] = clusters
    found["eks_nodegroups"] = [f"{c}:{n}" for c in clusters for n in _pages(eks, "list_nodegroups", "nodegroups",
                                                                            clusterName=c)]
    found["eks_access_entries"] = [f"{c}:{p}" for c in clusters
                                   for p in eks.list_access_entries(clusterName=c).get("accessEntries", [])]
    found["eks_addons"] = [f"{c}:{a}" for c in clusters for a in eks.list_addons(clusterName=c).get("addons", [])]
    found["eks_pod_identity_associations"] = [
        f"{c},{a['associationId']}" for c in clusters
        for a in eks.list_pod_identity_associations(clusterName=c).get("associations", [])]

    found["sqs_queues"] = emu.client("sqs").list_queues().get("QueueUrls", [])
    events = emu.client("events")
    found["eventbridge_rules"] = [r["Name"] for r in events.list_rules().get("Rules", [])]

    kms = emu.client("kms")
    keys = [k["KeyId"] for k in _pages(kms, "list_keys", "Keys")]
    aliases = _pages(kms, "list_aliases", "Aliases")
    # AWS-managed keys (alias/aws/ebs, ...) are created by their service on first use, as in AWS
    aws_managed = {a.get("TargetKeyId") for a in aliases if a["AliasName"].startswith("alias/aws/")}
    # the kept-logs key is the account's (the state-bootstrap stack's), never an environment's
    account_wide = {a.get("TargetKeyId") for a in aliases if a["AliasName"] == KEPT_LOGS_KEY_ALIAS}
    found["kms_keys"] = [k for k in keys if k not in aws_managed | account_wide
                         and kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] != "PendingDeletion"]
    found["kms_aliases"] = [a["AliasName"] for a in aliases if not a["AliasName"].startswith("alias/aws/")
                            and a["AliasName"] != KEPT_LOGS_KEY_ALIAS]

    found["log_groups"] = [g["logGroupName"] for g in
                           _pages(emu.client("logs"), "describe_log_groups", "logGroups")]
    return {kind: sorted(ids) for kind, ids in found.items()}


def retained(doc: dict) -> dict[str, list[str]]:
    """What a destroy of ``doc`` deliberately leaves behind: log groups with ``skip_destroy``
    (Terraform only forgets them), by literal name."""
    groups = doc.get("resource", {}).get("aws_cloudwatch_log_group", {}).values()
    return nonempty({"log_groups": sorted(b["name"] for b in groups if b.get("skip_destroy") is True
                                          and "${" not in b.get("name", "${"))})


def nonempty(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {kind: ids for kind, ids in found.items() if ids}


def counts(found: dict[str, list[str]]) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in found.items()}


def expected_counts(doc: dict) -> dict[str, int]:
    """How many of each inventory kind a clean apply of ``doc`` leaves in an empty emulator."""
    n = lambda rtype: len(doc.get("resource", {}).get(rtype, {}))  # noqa: E731
    return {
        "vpcs": n("aws_vpc"),
        "subnets": n("aws_subnet"),
        "internet_gateways": n("aws_internet_gateway"),
        "nat_gateways": n("aws_nat_gateway"),
        "eips": n("aws_eip"),
        "route_tables": n("aws_route_table") + n("aws_vpc"),  # + each VPC's main route table
        # each VPC's default group, our groups, and the group EKS creates per cluster
        "security_groups": n("aws_vpc") + n("aws_security_group") + n("aws_eks_cluster"),
        "flow_logs": n("aws_flow_log"),
        "ec2_instances": n("aws_instance"),
        "iam_roles": n("aws_iam_role"),
        "iam_policies": n("aws_iam_policy"),
        "iam_instance_profiles": n("aws_iam_instance_profile"),
        "oidc_providers": n("aws_iam_openid_connect_provider"),
        "eks_clusters": n("aws_eks_cluster"),
        "eks_nodegroups": n("aws_eks_node_group"),
        "eks_access_entries": n("aws_eks_access_entry"),
        "eks_addons": n("aws_eks_addon"),
        "eks_pod_identity_associations": n("aws_eks_pod_identity_association"),
        "sqs_queues": n("aws_sqs_queue"),
        "eventbridge_rules": n("aws_cloudwatch_event_rule"),
        "kms_keys": n("aws_kms_key"),
        "kms_aliases": n("aws_kms_alias"),
        "log_groups": n("aws_cloudwatch_log_group"),
    }
