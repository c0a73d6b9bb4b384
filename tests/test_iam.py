"""IAM layer: trust policies, managed policies, the IRSA building block and the controller policy."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, conditions, load_yaml, one, policy_statements, resources

NODE_POLICIES = {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                 "AmazonSSMManagedInstanceCore"}


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


def test_cluster_role_trusts_eks_and_has_cluster_policy(env_json):
    key, role = _role(env_json, "cluster-role")
    assert _trusted_service(env_json, role) == ["eks.amazonaws.com"]
    assert _attached(env_json, key) == {"AmazonEKSClusterPolicy"}
    (kms,) = [p for p in resources(env_json, "aws_iam_role_policy").values() if p["role"] == f"${{aws_iam_role.{key}.id}}"]
    (stmt,) = policy_statements(env_json, kms["policy"])
    assert stmt["resources"] == ["${aws_kms_key.kms-key.arn}"]
    assert set(stmt["actions"]) == {"kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"}


def test_karpenter_node_role_has_stable_name_and_exactly_four_policies(env_json):
    key, role = _role(env_json, "karpenter-node-role")
    name = one(env_json, "aws_eks_cluster")["name"]
    assert role["name"] == f"KarpenterNodeRole-{name}"
    assert _trusted_service(env_json, role) == ["ec2.amazonaws.com"]
    assert _attached(env_json, key) == NODE_POLICIES


def test_controller_nodes_have_their_own_role(env_json):
    key, role = _role(env_json, "controller-node-role")
    assert _trusted_service(env_json, role) == ["ec2.amazonaws.com"]
    assert _attached(env_json, key) == NODE_POLICIES
    group = one(env_json, "aws_eks_node_group")
    assert group["node_role_arn"] == f"${{aws_iam_role.{key}.arn}}"


def test_managed_policy_arns_use_the_partition(env_json):
    for attachment in resources(env_json, "aws_iam_role_policy_attachment").values():
        arn = attachment["policy_arn"]
        assert arn.startswith("arn:${data.aws_partition.partition.partition}:iam::aws:policy/") or arn.startswith("${aws_iam_policy.")


# ----------------------------------------------------------------------------- IRSA + controller policy


def _controller(doc):
    key, role = _role(doc, "karpenter_controller_role")
    return key, role


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
        assert variable.startswith('${replace(aws_eks_cluster.') and variable.endswith((":sub", ":aud"))


def _controller_policy(doc):
    key, _ = _controller(doc)
    (attachment,) = [a for a in resources(doc, "aws_iam_role_policy_attachment").values()
                     if a["role"] == f"${{aws_iam_role.{key}.name}}"]
    policy_key = attachment["policy_arn"].split(".")[1]
    policy = resources(doc, "aws_iam_policy")[policy_key]
    return {s["sid"]: s for s in policy_statements(doc, policy["policy"])}


UPSTREAM = ROOT / "tests" / "fixtures" / "karpenter-1.1.0"


def test_controller_policy_has_upstreams_16_statements(env_json):
    stmts = _controller_policy(env_json)
    assert list(stmts) == [
        "AllowScopedEC2InstanceAccessActions", "AllowScopedEC2LaunchTemplateAccessActions",
        "AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging", "AllowScopedResourceTagging",
        "AllowScopedDeletion", "AllowRegionalReadActions", "AllowSSMReadActions", "AllowPricingReadActions",
        "AllowInterruptionQueueActions", "AllowPassingInstanceRole", "AllowScopedInstanceProfileCreationActions",
        "AllowScopedInstanceProfileTagActions", "AllowScopedInstanceProfileActions",
        "AllowInstanceProfileReadActions", "AllowAPIServerEndpointDiscovery",
    ]
    assert all(s["effect"] == "Allow" for s in stmts.values())


P = "${data.aws_partition.partition.partition}"
A = "${data.aws_caller_identity.account.account_id}"


@pytest.mark.parametrize("sid,actions,resource_suffixes", [
    ("AllowScopedEC2InstanceAccessActions", {"ec2:RunInstances", "ec2:CreateFleet"},
     ["::image/*", "::snapshot/*", ":*:security-group/*", ":*:subnet/*"]),
    ("AllowScopedEC2LaunchTemplateAccessActions", {"ec2:RunInstances", "ec2:CreateFleet"}, [":*:launch-template/*"]),
    ("AllowScopedEC2InstanceActionsWithTags", {"ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"},
     [":*:fleet/*", ":*:instance/*", ":*:volume/*", ":*:network-interface/*", ":*:launch-template/*", ":*:spot-instances-request/*"]),
    ("AllowScopedResourceCreationTagging", {"ec2:CreateTags"},
     [":*:fleet/*", ":*:instance/*", ":*:volume/*", ":*:network-interface/*", ":*:launch-template/*", ":*:spot-instances-request/*"]),
    ("AllowScopedResourceTagging", {"ec2:CreateTags"}, [":*:instance/*"]),
    ("AllowScopedDeletion", {"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"}, [":*:instance/*", ":*:launch-template/*"]),
])
def test_ec2_statements_are_region_scoped(env_json, sid, actions, resource_suffixes):
    region = "us-west-2"
    stmt = _controller_policy(env_json)[sid]
    assert set(stmt["actions"]) == actions
    assert stmt["resources"] == [f"arn:{P}:ec2:{region}{s}" for s in resource_suffixes]


def test_tag_conditions_pin_the_cluster_and_nodepool(env_json):
    stmts = _controller_policy(env_json)
    name = one(env_json, "aws_eks_cluster")["name"]
    owned = f"kubernetes.io/cluster/{name}"
    lt = conditions(stmts["AllowScopedEC2LaunchTemplateAccessActions"])
    assert lt == {("StringEquals", f"aws:ResourceTag/{owned}"): ["owned"],
                  ("StringLike", "aws:ResourceTag/karpenter.sh/nodepool"): ["*"]}
    create = conditions(stmts["AllowScopedEC2InstanceActionsWithTags"])
    assert create[("StringEquals", "aws:RequestTag/eks:eks-cluster-name")] == [name]
    assert create[("StringEquals", f"aws:RequestTag/{owned}")] == ["owned"]
    tagging = conditions(stmts["AllowScopedResourceCreationTagging"])
    assert tagging[("StringEquals", "ec2:CreateAction")] == ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]
    retag = conditions(stmts["AllowScopedResourceTagging"])
    assert retag[("ForAllValues:StringEquals", "aws:TagKeys")] == ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
    assert retag[("StringEqualsIfExists", "aws:RequestTag/eks:eks-cluster-name")] == [name]
    deletion = conditions(stmts["AllowScopedDeletion"])
    assert deletion[("StringEquals", f"aws:ResourceTag/{owned}")] == ["owned"]


def test_read_ssm_pricing_queue_and_cluster_statements(env_json):
    stmts = _controller_policy(env_json)
    assert conditions(stmts["AllowRegionalReadActions"]) == {("StringEquals", "aws:RequestedRegion"): ["us-west-2"]}
    assert stmts["AllowRegionalReadActions"]["resources"] == ["*"]
    assert stmts["AllowSSMReadActions"]["resources"] == [f"arn:{P}:ssm:us-west-2::parameter/aws/service/*"]
    assert stmts["AllowSSMReadActions"]["actions"] == ["ssm:GetParameter"]
    assert stmts["AllowPricingReadActions"]["actions"] == ["pricing:GetProducts"]
    queue = stmts["AllowInterruptionQueueActions"]
    assert set(queue["actions"]) == {"sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}
    assert queue["resources"][0].startswith("${aws_sqs_queue.") and queue["resources"][0].endswith(".arn}")
    name = one(env_json, "aws_eks_cluster")["name"]
    assert stmts["AllowAPIServerEndpointDiscovery"]["resources"] == [f"arn:{P}:eks:us-west-2:{A}:cluster/{name}"]
    assert stmts["AllowAPIServerEndpointDiscovery"]["actions"] == ["eks:DescribeCluster"]


def test_pass_role_only_on_the_node_role_and_only_to_ec2(env_json):
    stmt = _controller_policy(env_json)["AllowPassingInstanceRole"]
    node_key, _ = _role(env_json, "karpenter-node-role")
    assert stmt["resources"] == [f"${{aws_iam_role.{node_key}.arn}}"]
    assert "*" not in stmt["resources"]
    assert conditions(stmt) == {("StringEquals", "iam:PassedToService"): ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}


def test_instance_profile_statements_are_tag_scoped_in_this_account(env_json):
    stmts = _controller_policy(env_json)
    name = one(env_json, "aws_eks_cluster")["name"]
    profile = [f"arn:{P}:iam::{A}:instance-profile/*"]
    for sid in ("AllowScopedInstanceProfileCreationActions", "AllowScopedInstanceProfileTagActions",
                "AllowScopedInstanceProfileActions", "AllowInstanceProfileReadActions"):
        assert stmts[sid]["resources"] == profile, sid
    create = conditions(stmts["AllowScopedInstanceProfileCreationActions"])
    assert create[("StringEquals", "aws:RequestTag/topology.kubernetes.io/region")] == ["us-west-2"]
    assert create[("StringLike", "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass")] == ["*"]
    tag = conditions(stmts["AllowScopedInstanceProfileTagActions"])
    assert len(tag) == 7 and tag[("StringEquals", f"aws:ResourceTag/kubernetes.io/cluster/{name}")] == ["owned"]
    manage = stmts["AllowScopedInstanceProfileActions"]
    assert set(manage["actions"]) == {"iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                                      "iam:DeleteInstanceProfile"}
    assert stmts["AllowInstanceProfileReadActions"]["actions"] == ["iam:GetInstanceProfile"]


def test_controller_policy_matches_upstream_template_action_for_action(env_json):
    """Every Sid/action pair of upstream's CloudFormation template is in ours, and nothing more."""
    text = (ROOT / "tests" / "fixtures" / "karpenter-1.1.0" / "controller-policy-actions.yaml").read_text()
    upstream = load_yaml(text)
    ours = {sid: sorted(s["actions"]) for sid, s in _controller_policy(env_json).items()}
    assert ours == {sid: sorted(actions) for sid, actions in upstream.items()}
