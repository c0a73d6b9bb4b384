"""IAM layer: trust policies, managed policies, the IRSA building block and the controller policies.

The Karpenter controller's policies are checked against upstream Karpenter 1.14.1's getting-started
CloudFormation template (tests/fixtures/karpenter-1.14.1), statement for statement."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests import iam_policies
from tests.cloudformation import load_template
from tests.conftest import ROOT, conditions, one, policy_statements, ref_id, resources

UPSTREAM_TEMPLATE = ROOT / "tests" / "fixtures" / "karpenter-1.14.1" / "getting-started-cloudformation.yaml"

# Upstream's opt-in policy we do not ship: this product does not expose zonal shift.
NOT_SHIPPED = {"KarpenterControllerZonalShiftPolicy-<cluster>"}

NODE_POLICIES = {"AmazonEKS_CNI_Policy", "AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly",
                 "AmazonSSMManagedInstanceCore"}

P = "${data.aws_partition.partition.partition}"
A = "${data.aws_caller_identity.account.account_id}"


def _role(doc, name_fragment):
    roles = {k: v for k, v in resources(doc, "aws_iam_role").items() if name_fragment in k}
    assert len(roles) == 1, sorted(resources(doc, "aws_iam_role"))
    return next(iter(roles.items()))


def _attached(doc, role_key):
    return {a["policy_arn"].rsplit("/", 1)[1] for a in resources(doc, "aws_iam_role_policy_attachment").values()
            if a["role"] == f"${{aws_iam_role.{role_key}.name}}"}


def _trusted_service(doc, role):
    (stmt,) = policy_statements(doc, role["assume_role_policy"])
    assert stmt["actions"] == ["sts:AssumeRole"] and stmt["effect"] == "Allow"
    (principal,) = stmt["principals"]
    assert principal["type"] == "Service"
    return principal["identifiers"]


# ----------------------------------------------------------------------------- upstream's template


# Template placeholder -> neutral symbol; the synthesized side maps its own tokens to the same symbols.
UPSTREAM_SYMBOLS = {
    "${AWS::Partition}": "<partition>",
    "${AWS::Region}": "<region>",
    "${AWS::AccountId}": "<account>",
    "${ClusterName}": "<cluster>",
    "${KarpenterNodeRole.Arn}": "<node-role-arn>",
    "${KarpenterInterruptionQueue.Arn}": "<queue-arn>",
}


def _symbolize(text: str, symbols: dict[str, str]) -> str:
    for token, symbol in symbols.items():
        text = text.replace(token, symbol)
    return text


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(UPSTREAM_TEMPLATE)


@pytest.fixture(scope="module")
def upstream(template) -> dict[str, list[dict]]:
    return upstream_policies(template)


def upstream_policies(template: dict) -> dict[str, list[dict]]:
    """``{policy name: IAM statements}`` of every managed policy of the template, placeholders symbolized."""
    out: dict[str, list[dict]] = {}
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        props = res["Properties"]
        document = props["PolicyDocument"]
        text = document if isinstance(document, str) else json.dumps(document)
        text = _symbolize(text, UPSTREAM_SYMBOLS)
        name = _symbolize(props["ManagedPolicyName"], UPSTREAM_SYMBOLS)
        assert "${" not in text + name, f"{logical_id}: a template placeholder has no symbol: {text}"
        out[name] = json.loads(text)["Statement"]
    return out


# ----------------------------------------------------------------------------- canonical statements + comparator


def _set(value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    return frozenset(str(v).lower() if isinstance(v, bool) else str(v) for v in items)


def _canonical_upstream(stmt: dict) -> dict[str, Any]:
    """An IAM JSON statement as comparable sets."""
    known = {"Sid", "Effect", "Action", "Resource", "Condition"}
    assert set(stmt) <= known, f"upstream statement keys the comparator does not know: {sorted(set(stmt) - known)}"
    return {
        "Sid": stmt.get("Sid"),
        "Effect": stmt.get("Effect"),
        "Action": _set(stmt["Action"]),
        "Resource": _set(stmt.get("Resource", [])),
        "Condition": {(op, key): _set(values) for op, pairs in stmt.get("Condition", {}).items()
                      for key, values in pairs.items()},
    }


def _canonical_ours(block: dict, symbols: dict[str, str]) -> dict[str, Any]:
    """A synthesized ``aws_iam_policy_document`` statement block as comparable sets, tokens symbolized."""
    block = json.loads(_symbolize(json.dumps(block), symbols))
    leftover = [s for s in json.dumps(block).split('"') if "${" in s]
    assert not leftover, f"synthesized references without a symbol: {leftover}"
    known = {"sid", "effect", "actions", "resources", "condition"}
    extra = {k: v for k, v in block.items() if k not in known}  # e.g. principals / not_actions: must show up
    keys = [(c["test"], c["variable"]) for c in block.get("condition", [])]
    assert len(set(keys)) == len(keys), f"a condition (operator, key) appears twice: {keys}"
    out = {
        "Sid": block.get("sid"),
        "Effect": block.get("effect", "Allow"),
        "Action": _set(block["actions"]),
        "Resource": _set(block.get("resources", [])),
        "Condition": {(c["test"], c["variable"]): _set(c["values"]) for c in block.get("condition", [])},
    }
    if extra:
        out["extra"] = extra
    return out


def _ours_symbols(doc: dict) -> dict[str, str]:
    """This stack's tokens -> the symbols of ``UPSTREAM_SYMBOLS`` (references first, then literals)."""
    node_key, _ = _role(doc, "karpenter-node-role")
    (queue_key,) = resources(doc, "aws_sqs_queue")
    return {
        f"${{aws_iam_role.{node_key}.arn}}": "<node-role-arn>",
        f"${{aws_sqs_queue.{queue_key}.arn}}": "<queue-arn>",
        P: "<partition>",
        A: "<account>",
        one(doc, "aws_eks_cluster")["name"]: "<cluster>",
        _region(doc): "<region>",
    }


def _region(doc: dict) -> str:
    providers = doc["provider"]["aws"]
    return (providers[0] if isinstance(providers, list) else providers)["region"]


def differences(ours: dict[str, list[dict]], theirs: dict[str, list[dict]]) -> list[str]:
    """Every way two ``{policy name: [canonical statement]}`` differ: policy names, Sid order, and per
    statement Effect, Action set, Resource set, Condition (operator, key) pairs and their value sets."""
    out: list[str] = []
    for name in sorted(set(theirs) - set(ours)):
        out.append(f"missing policy {name}")
    for name in sorted(set(ours) - set(theirs)):
        out.append(f"extra policy {name}")
    for name in [n for n in theirs if n in ours]:
        mine, up = ours[name], theirs[name]
        mine_sids, up_sids = [s["Sid"] for s in mine], [s["Sid"] for s in up]
        if mine_sids != up_sids:
            out.append(f"{name}: Sids {mine_sids} != upstream {up_sids}")
        by_sid = {s["Sid"]: s for s in mine}
        for u in up:
            m = by_sid.get(u["Sid"])
            if m is None:
                continue
            where = f"{name} {u['Sid']}"
            for field in ("Effect", "Action", "Resource"):
                if m[field] != u[field]:
                    out.append(f"{where} {field}: ours {_show(m[field])} != upstream {_show(u[field])}")
            for key in sorted(set(m["Condition"]) | set(u["Condition"])):
                mv, uv = m["Condition"].get(key), u["Condition"].get(key)
                if mv != uv:
                    out.append(f"{where} Condition {key[0]} {key[1]}: ours {_show(mv)} != upstream {_show(uv)}")
            if "extra" in m:
                out.append(f"{where}: elements upstream does not have: {sorted(m['extra'])}")
    return out


def _show(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


# ----------------------------------------------------------------------------- roles


def test_cluster_role_trusts_eks_and_has_cluster_policy(env_json):
    key, role = _role(env_json, "cluster-role")
    assert _trusted_service(env_json, role) == ["eks.amazonaws.com"]
    assert _attached(env_json, key) == {"AmazonEKSClusterPolicy"}
    (kms,) = [p for p in resources(env_json, "aws_iam_role_policy").values() if p["role"] == f"${{aws_iam_role.{key}.id}}"]
    (stmt,) = policy_statements(env_json, kms["policy"])
    assert stmt["resources"] == ["${aws_kms_key.kms-key.arn}"]
    assert set(stmt["actions"]) == {"kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"}


def test_karpenter_node_role_has_stable_name_and_upstreams_four_policies(env_json, template):
    key, role = _role(env_json, "karpenter-node-role")
    name = one(env_json, "aws_eks_cluster")["name"]
    assert role["name"] == f"KarpenterNodeRole-{name}"
    assert _trusted_service(env_json, role) == ["ec2.amazonaws.com"]
    upstream_arns = template["Resources"]["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"]
    upstream_names = {arn.removeprefix("arn:${AWS::Partition}:iam::aws:policy/") for arn in upstream_arns}
    assert upstream_names == NODE_POLICIES  # ...RegistryPullOnly since upstream replaced ...RegistryReadOnly
    assert _attached(env_json, key) == NODE_POLICIES


def test_controller_nodes_have_their_own_role(env_json):
    key, role = _role(env_json, "controller-node-role")
    assert _trusted_service(env_json, role) == ["ec2.amazonaws.com"]
    assert _attached(env_json, key) == NODE_POLICIES  # pulling images needs no more than PullOnly
    group = one(env_json, "aws_eks_node_group")
    assert group["node_role_arn"] == f"${{aws_iam_role.{key}.arn}}"


def test_managed_policy_arns_use_the_partition(env_json):
    for attachment in resources(env_json, "aws_iam_role_policy_attachment").values():
        arn = attachment["policy_arn"]
        assert arn.startswith("arn:${data.aws_partition.partition.partition}:iam::aws:policy/") or arn.startswith("${aws_iam_policy.")


# ----------------------------------------------------------------------------- IRSA + controller policies


def _controller(doc):
    return _role(doc, "karpenter_controller_role")


def _controller_policies(doc) -> dict[str, list[dict]]:
    """``{IAM policy name: statement blocks}`` of every customer-managed policy on the controller role."""
    key, _ = _controller(doc)
    policies = resources(doc, "aws_iam_policy")
    out: dict[str, list[dict]] = {}
    for attachment in resources(doc, "aws_iam_role_policy_attachment").values():
        if attachment["role"] != f"${{aws_iam_role.{key}.name}}":
            continue
        rtype, policy_key = ref_id(attachment["policy_arn"])
        assert rtype == "aws_iam_policy", attachment["policy_arn"]  # no AWS-managed policy on the controller
        policy = policies[policy_key]
        out[policy["name"]] = policy_statements(doc, policy["policy"])
    return out


def _controller_statements(doc) -> dict[str, dict]:
    """Every controller statement by Sid (Sids are unique across the policies, as upstream)."""
    stmts = [s for blocks in _controller_policies(doc).values() for s in blocks]
    by_sid = {s["sid"]: s for s in stmts}
    assert len(by_sid) == len(stmts)
    return by_sid


def _ours_canonical(doc, policies: dict[str, list[dict]] | None = None) -> dict[str, list[dict]]:
    symbols = _ours_symbols(doc)
    policies = _controller_policies(doc) if policies is None else policies
    return {_symbolize(name, symbols): [_canonical_ours(b, symbols) for b in blocks]
            for name, blocks in policies.items()}


def _upstream_canonical(upstream) -> dict[str, list[dict]]:
    return {name: [_canonical_upstream(s) for s in stmts]
            for name, stmts in upstream.items() if name not in NOT_SHIPPED}


def test_irsa_trust_is_limited_to_one_service_account(env_json):
    _, role = _controller(env_json)
    (stmt,) = policy_statements(env_json, role["assume_role_policy"])
    assert stmt["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    (principal,) = stmt["principals"]
    assert principal["type"] == "Federated"
    assert principal["identifiers"][0].startswith("${aws_iam_openid_connect_provider.")
    conds = {(t, v.split("}:")[-1]): vals for (t, v), vals in conditions(stmt).items()}
    assert conds == {
        ("StringEquals", "sub"): ["system:serviceaccount:karpenter:karpenter"],
        ("StringEquals", "aud"): ["sts.amazonaws.com"],
    }
    for (_, variable) in conditions(stmt):
        assert variable.startswith('${replace(aws_iam_openid_connect_provider.') and variable.endswith((":sub", ":aud"))


def test_upstream_template_has_the_six_controller_policies(upstream):
    """The fixture parses (CloudFormation tags included) into upstream 1.14.1's split policies."""
    assert list(upstream) == [
        "KarpenterControllerNodeLifecyclePolicy-<cluster>", "KarpenterControllerIAMIntegrationPolicy-<cluster>",
        "KarpenterControllerEKSIntegrationPolicy-<cluster>", "KarpenterControllerInterruptionPolicy-<cluster>",
        "KarpenterControllerZonalShiftPolicy-<cluster>", "KarpenterControllerResourceDiscoveryPolicy-<cluster>",
    ]
    assert sum(len(s) for s in upstream.values()) == 18


def test_controller_policies_equal_upstream_1_14_1(env_json, upstream):
    """Same policy names, Sids in order, Effect, Action / Resource sets and Condition operator/key/value
    sets as upstream's template, for every policy but the ZonalShift one, which must be absent."""
    ours = _ours_canonical(env_json)
    assert differences(ours, _upstream_canonical(upstream)) == []
    assert not NOT_SHIPPED & set(ours)
    actions = {a for blocks in _controller_policies(env_json).values() for s in blocks for a in s["actions"]}
    assert not any(a.startswith("arc-zonal-shift:") for a in actions)


def _drop_value(blocks: dict[str, list[dict]]) -> str:
    stmt = _find(blocks, "AllowPassingInstanceRole")
    stmt["condition"][0]["values"] = ["ec2.amazonaws.com"]  # no more .cn
    return r"AllowPassingInstanceRole Condition StringEquals iam:PassedToService: ours \['ec2\.amazonaws\.com'\]"


def _change_operator(blocks: dict[str, list[dict]]) -> str:
    stmt = _find(blocks, "AllowScopedDeletion")
    cond = next(c for c in stmt["condition"] if c["variable"] == "aws:ResourceTag/karpenter.sh/nodepool")
    cond["test"] = "StringEquals"
    return r"AllowScopedDeletion Condition String(Like|Equals) aws:ResourceTag/karpenter\.sh/nodepool"


def _drop_condition(blocks: dict[str, list[dict]]) -> str:
    stmt = _find(blocks, "AllowRegionalReadActions")
    del stmt["condition"]
    return r"AllowRegionalReadActions Condition StringEquals aws:RequestedRegion: ours None"


def _add_action(blocks: dict[str, list[dict]]) -> str:
    _find(blocks, "AllowInstanceProfileReadActions")["actions"].append("iam:ListRoles")
    return r"AllowInstanceProfileReadActions Action: .*iam:ListRoles"


def _widen_resource(blocks: dict[str, list[dict]]) -> str:
    _find(blocks, "AllowPassingInstanceRole")["resources"] = ["*"]
    return r"AllowPassingInstanceRole Resource: ours \['\*'\]"


def _swap_sids(blocks: dict[str, list[dict]]) -> str:
    name = next(n for n in blocks if "NodeLifecycle" in n)
    blocks[name][0], blocks[name][1] = blocks[name][1], blocks[name][0]
    return r"NodeLifecyclePolicy-<cluster>: Sids \['AllowScopedEC2LaunchTemplateAccessActions'"


def _add_policy(blocks: dict[str, list[dict]]) -> str:
    name = next(n for n in blocks if "EKSIntegration" in n)
    blocks[name.replace("EKSIntegration", "ZonalShift")] = [{
        "sid": "AllowZonalShiftStatusReadOnly", "effect": "Allow", "actions": ["arc-zonal-shift:GetManagedResource"],
        "resources": ["*"]}]
    return r"^extra policy KarpenterControllerZonalShiftPolicy-<cluster>$"


def _find(blocks: dict[str, list[dict]], sid: str) -> dict:
    (stmt,) = [s for stmts in blocks.values() for s in stmts if s.get("sid") == sid]
    return stmt


@pytest.mark.parametrize("mutate", [_drop_value, _change_operator, _drop_condition, _add_action, _widen_resource,
                                    _swap_sids, _add_policy])
def test_comparator_reports_a_changed_statement(env_json, upstream, mutate):
    """The upstream comparison can fail: one change to a copy of the synthesized statements is reported."""
    mutated = copy.deepcopy(_controller_policies(env_json))
    expected = mutate(mutated)  # a regex every reported line must match
    found = differences(_ours_canonical(env_json, mutated), _upstream_canonical(upstream))
    assert found, f"{mutate.__name__} went unnoticed"
    assert all(re.search(expected, line) for line in found), found


def test_each_controller_policy_fits_the_managed_policy_size_limit(env_json):
    """Upstream split the policy because one hit IAM's 6,144-character limit (whitespace not counted)."""
    controller = {p["policy"] for p in resources(env_json, "aws_iam_policy").values()
                  if p["name"].startswith("KarpenterController")}
    docs = [p for p in iam_policies.extract(env_json) if f"${{{p.address}.json}}" in controller]
    assert len(docs) == 5
    for policy in docs:
        assert len(json.dumps(policy.document, separators=(",", ":"))) < 6144, policy.address


def test_pass_role_only_on_the_node_role_and_only_to_ec2(env_json):
    stmt = _controller_statements(env_json)["AllowPassingInstanceRole"]
    node_key, _ = _role(env_json, "karpenter-node-role")
    assert stmt["resources"] == [f"${{aws_iam_role.{node_key}.arn}}"]
    assert conditions(stmt) == {("StringEquals", "iam:PassedToService"): ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}
    others = [s for s in _controller_statements(env_json).values() if "iam:PassRole" in s["actions"]]
    assert others == [stmt]


def test_interruption_and_cluster_statements_name_this_stacks_resources(env_json):
    stmts = _controller_statements(env_json)
    (queue,) = stmts["AllowInterruptionQueueActions"]["resources"]
    assert ref_id(queue)[0] == "aws_sqs_queue" and queue.endswith(".arn}")
    name = one(env_json, "aws_eks_cluster")["name"]
    cluster_arn = f"arn:{P}:eks:{_region(env_json)}:{A}:cluster/{name}"
    assert stmts["AllowAPIServerEndpointDiscovery"]["resources"] == [cluster_arn]


def test_only_read_statements_use_a_wildcard_resource(env_json):
    """``Resource: "*"`` only where the API has no resource ARN: region-conditioned EC2 describes,
    pricing, listing instance profiles. Every other statement names ARNs in this region or account."""
    region = _region(env_json)
    for sid, stmt in _controller_statements(env_json).items():
        if "*" in stmt["resources"]:
            assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in stmt["actions"]), sid
            continue
        for arn in stmt["resources"]:
            assert arn.startswith("${") or f":{region}:" in arn or f":iam::{A}:" in arn, (sid, arn)


def test_pod_identity_trust_is_limited_to_one_service_account_of_one_cluster(synth):
    """Pod Identity (t-alt): the same role (same logical id: a switch updates its trust in place) trusts
    pods.eks.amazonaws.com with AssumeRole and TagSession, narrowed by the session tags EKS sets to this
    cluster's ARN and the one service account; no OIDC trust is left."""
    doc = synth["t-alt"]
    cluster_key = next(iter(resources(doc, "aws_eks_cluster")))
    for role_id, namespace, account in (("karpenter_controller_role", "karpenter", "karpenter"),
                                        ("addons_ebs-csi_role", "kube-system", "ebs-csi-controller-sa")):
        _, role = _role(doc, role_id)
        (stmt,) = policy_statements(doc, role["assume_role_policy"])
        assert stmt["effect"] == "Allow" and sorted(stmt["actions"]) == ["sts:AssumeRole", "sts:TagSession"]
        assert stmt["principals"] == [{"type": "Service", "identifiers": ["pods.eks.amazonaws.com"]}]
        assert conditions(stmt) == {
            ("StringEquals", "aws:RequestTag/eks-cluster-arn"): [f"${{aws_eks_cluster.{cluster_key}.arn}}"],
            ("StringEquals", "aws:RequestTag/kubernetes-namespace"): [namespace],
            ("StringEquals", "aws:RequestTag/kubernetes-service-account"): [account],
        }
        assert "AssumeRoleWithWebIdentity" not in json.dumps(stmt)
        # the same resource and trust document as under IRSA: a switch updates the trust in place
        assert _role(doc, role_id)[0] == _role(synth["dev"], role_id)[0]
        assert role["assume_role_policy"] == _role(synth["dev"], role_id)[1]["assume_role_policy"]


def test_pod_identity_associates_each_role_with_its_service_account(synth):
    doc = synth["t-alt"]
    cluster_key = next(iter(resources(doc, "aws_eks_cluster")))
    found = {(a["namespace"], a["service_account"]): a for a in resources(doc, "aws_eks_pod_identity_association").values()}
    assert sorted(found) == [("karpenter", "karpenter"), ("kube-system", "ebs-csi-controller-sa")]
    for (namespace, _), association in found.items():
        assert association["cluster_name"] == f"${{aws_eks_cluster.{cluster_key}.name}}"
        role_key = {"karpenter": "karpenter_controller_role", "kube-system": "addons_ebs-csi_role"}[namespace]
        assert association["role_arn"] == f"${{aws_iam_role.{_role(doc, role_key)[0]}.arn}}"
    for stack in ("dev", "prod", "t-cloud"):  # irsa, the default
        assert "aws_eks_pod_identity_association" not in synth[stack]["resource"]
