"""Cluster layer: EKS control plane, OIDC, controller node group, access entry, SG tag, kubeconfig."""

from __future__ import annotations

import json
import re

from stacks.config import ClusterConfig
from tests.conftest import one, ref_id, resources


def test_cluster_version_logging_endpoint_and_subnets(synth):
    doc = synth["prod"]
    cluster = one(doc, "aws_eks_cluster")
    assert cluster["version"] == "1.36" and cluster["upgrade_policy"] == {"support_type": "EXTENDED"}
    assert cluster["enabled_cluster_log_types"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    vpc = cluster["vpc_config"]
    assert vpc["endpoint_private_access"] is True and vpc["endpoint_public_access"] is True
    assert vpc["public_access_cidrs"] == ["0.0.0.0/0"]
    private = {f"${{aws_subnet.{k}.id}}" for k in resources(doc, "aws_subnet") if "private-" in k}
    assert set(vpc["subnet_ids"]) == private


def test_newer_pair_sets_the_cluster_version(synth):
    assert one(synth["t-alt"], "aws_eks_cluster")["version"] == "1.32"


def test_secrets_are_encrypted_with_the_rotating_stack_key(env_json):
    cluster = one(env_json, "aws_eks_cluster")
    assert cluster["encryption_config"] == {"provider": {"key_arn": "${aws_kms_key.kms-key.arn}"}, "resources": ["secrets"]}
    assert one(env_json, "aws_kms_key")["enable_key_rotation"] is True


def test_access_config_lets_the_deployer_reach_the_api(env_json):
    """API (access entries only) for a new cluster; an existing one keeps the mode it runs, read at plan
    from the running cluster (EKS moves a mode one way only, and old clusters may use aws-auth)."""
    access = one(env_json, "aws_eks_cluster")["access_config"]
    running = next(k for k in env_json["data"]["aws_eks_cluster"] if "running" in k)
    assert access == {
        "authentication_mode": f'${{coalesce(one(data.aws_eks_cluster.{running}[*].access_config[0].authentication_mode), "API")}}',
        "bootstrap_cluster_creator_admin_permissions": True}


def test_controller_node_group_is_replaced_new_one_first(env_json):
    """A name prefix and create_before_destroy: changing instance type, disk, AMI type or zones brings
    the new group up before the old one (CoreDNS, Karpenter) goes (DESIGN fact 20); it runs the AMI
    release of karpenter.ami_alias (issue 15: one bump rolls every node)."""
    group = one(env_json, "aws_eks_node_group")
    assert "node_group_name" not in group and group["node_group_name_prefix"] == "karpenter-controllers-"
    assert group["lifecycle"]["create_before_destroy"] is True
    assert group["release_version"] == "1.36.2-20260714"


def test_log_group_exists_before_the_cluster_with_retention(synth):
    doc = synth["prod"]
    (key, group), = [(k, g) for k, g in resources(doc, "aws_cloudwatch_log_group").items() if "cluster_log-group" in k]
    assert group["name"] == "/aws/eks/platform-prod/cluster" and group["retention_in_days"] == 365
    # the account's kept-logs key (state-bootstrap) when it exists; the stack's key only for a running cluster
    # of an account without it (warned about on every plan)
    (lookup_id, lookup), = doc["data"]["aws_ssm_parameters_by_path"].items()
    assert lookup["path"] == "/platform/kept-logs" and set(lookup) == {"//", "path", "lifecycle"}  # literal: at plan
    found = f"data.aws_ssm_parameters_by_path.{lookup_id}"
    assert group["kms_key_id"] == (f"${{(length({found}.names) >= 1) ? nonsensitive(element({found}.values, 0)) : "
                                   "aws_kms_key.kms-key.arn}")
    assert f"aws_cloudwatch_log_group.{key}" in one(doc, "aws_eks_cluster")["depends_on"]


def test_oidc_provider_uses_sts_audience_without_thumbprints(env_json):
    oidc = one(env_json, "aws_iam_openid_connect_provider")
    assert oidc["client_id_list"] == ["sts.amazonaws.com"]
    assert "thumbprint_list" not in oidc
    assert re.fullmatch(r"\$\{aws_eks_cluster\.\w+\.identity\[0\]\.oidc\[0\]\.issuer\}", oidc["url"])
    assert "tls" not in json.dumps(env_json.get("terraform", {}).get("required_providers", {}))


def test_only_one_node_group_and_it_is_for_controllers(synth):
    for stack, sizes in {"dev": (1, 1, 2), "prod": (2, 2, 3)}.items():
        doc = synth[stack]
        group = one(doc, "aws_eks_node_group")
        assert group["labels"] == {"karpenter.sh/controller": "true"}
        assert group["taint"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
        assert group["ami_type"] == "AL2023_x86_64_STANDARD"
        scaling = group["scaling_config"]
        assert (scaling["desired_size"], scaling["min_size"], scaling["max_size"]) == sizes
        private = {f"${{aws_subnet.{k}.id}}" for k in resources(doc, "aws_subnet") if "private-" in k}
        assert set(group["subnet_ids"]) == private
    assert one(synth["dev"], "aws_eks_node_group")["instance_types"] == ["t3.large"]
    assert one(synth["prod"], "aws_eks_node_group")["instance_types"] == ["m6i.large"]


def test_graviton_instance_types_get_the_arm_ami():
    expected = {"m7g.large": "ARM_64", "c6gn.xlarge": "ARM_64", "t4g.medium": "ARM_64", "a1.large": "ARM_64",
                "g5.xlarge": "x86_64", "m6i.large": "x86_64", "t3.large": "x86_64"}
    for instance_type, arch in expected.items():
        assert ClusterConfig(node_instance_type=instance_type).node_ami_type == f"AL2023_{arch}_STANDARD", instance_type


def test_karpenter_nodes_join_through_an_ec2_linux_access_entry(env_json):
    entry = one(env_json, "aws_eks_access_entry")
    assert entry["type"] == "EC2_LINUX"
    rtype, key = ref_id(entry["principal_arn"])
    assert rtype == "aws_iam_role" and "karpenter-node-role" in key


def test_cluster_security_group_carries_the_discovery_tag(env_json):
    tag = one(env_json, "aws_ec2_tag")
    assert tag["key"] == "karpenter.sh/discovery"
    assert tag["value"] == one(env_json, "aws_eks_cluster")["name"]
    assert re.fullmatch(r"\$\{aws_eks_cluster\.\w+\.vpc_config\[0\]\.cluster_security_group_id\}", tag["resource_id"])


def _kubeconfig(doc):
    """The kubeconfig output's jsonencode() argument as a Python object (references kept as strings)."""
    expr = doc["output"]["kubeconfig"]["value"]
    body = expr.removeprefix("${jsonencode(").removesuffix(")}")
    body = re.sub(r"(?<=[=\[,] )(aws_[\w.\[\]-]+)", r'"\1"', body)  # quote bare references
    return json.loads(body.replace(" = ", ": "))


def test_kubeconfig_uses_exec_auth_and_holds_no_secret(env_json):
    config = _kubeconfig(env_json)
    name = one(env_json, "aws_eks_cluster")["name"]
    (cluster,) = config["clusters"]
    assert cluster["cluster"]["server"].endswith(".endpoint")
    assert cluster["cluster"]["certificate-authority-data"].endswith("certificate_authority[0].data")
    assert config["current-context"] == name
    (user,) = config["users"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "aws" and exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_["args"] == ["eks", "get-token", "--cluster-name", name, "--region", "us-west-2", "--output", "json"]
    assert "token" not in user["user"] and "password" not in json.dumps(config)


def test_admin_principals_get_cluster_admin_access_entries(synth):
    doc = synth["t-cloud"]
    cluster_key = next(iter(resources(doc, "aws_eks_cluster")))
    entries = {k: e for k, e in resources(doc, "aws_eks_access_entry").items() if e.get("type") == "STANDARD"
               and "_deployer-" not in k}  # the state-bootstrap's roles: tests/test_bootstrap_trust.py
    assert sorted(e["principal_arn"] for e in entries.values()) == [
        "arn:aws:iam::123456789012:role/ci/github-actions-deploy", "arn:aws:iam::123456789012:role/platform-admins"]
    assert sorted(entries) == sorted(k for k in entries if "admin-123456789012-role-" in k)  # keyed by name, not index
    associations = {k: a for k, a in resources(doc, "aws_eks_access_policy_association").items()
                    if "_deployer-" not in k}
    assert len(associations) == 2
    for assoc in associations.values():
        assert assoc["cluster_name"] == f"${{aws_eks_cluster.{cluster_key}.name}}"
        assert assoc["policy_arn"] == ("arn:${data.aws_partition.partition.partition}:eks::aws:"
                                       "cluster-access-policy/AmazonEKSClusterAdminPolicy")
        assert assoc["access_scope"] == {"type": "cluster"}
        rtype, key = ref_id(assoc["principal_arn"])
        assert rtype == "aws_eks_access_entry" and key in entries  # created after its entry
    assert "aws_eks_access_policy_association" not in synth["dev"]["resource"]


def test_the_creator_listed_as_admin_is_refused_at_plan(synth):
    """EKS made the creator an admin already; a second access entry for it fails at apply. Checked
    only while the cluster does not exist yet: later, a listed admin plans as itself."""
    doc = synth["t-cloud"]
    (caller_key,) = doc["data"]["aws_iam_session_context"]
    (clusters_key,) = doc["data"]["aws_eks_clusters"]
    assert doc["data"]["aws_iam_session_context"][caller_key]["arn"] == "${data.aws_caller_identity.account.arn}"
    for entry in (e for k, e in resources(doc, "aws_eks_access_entry").items() if e.get("type") == "STANDARD"
                  and "_deployer-" not in k):
        (check,) = entry["lifecycle"]["precondition"]
        assert check["condition"] == (
            f'${{(contains(tolist(data.aws_eks_clusters.{clusters_key}.names), "platform-tfc") || '
            f'(data.aws_iam_session_context.{caller_key}.issuer_arn != "{entry["principal_arn"]}"))}}')
        assert "the identity running this apply" in check["error_message"]


def test_plan_refuses_more_than_one_minor_step_from_the_running_cluster(synth):
    """The running version is read at plan (none on a first apply: the target stands in for it)."""
    doc = synth["prod"]
    (listing,) = doc["data"]["aws_eks_clusters"]
    (running_key, running), = doc["data"]["aws_eks_cluster"].items()
    assert running["name"] == "platform-prod"
    assert running["count"] == (f'${{contains(tolist(data.aws_eks_clusters.{listing}.names), "platform-prod") ? 1 : 0}}')
    (check,) = one(doc, "aws_eks_cluster")["lifecycle"]["precondition"]
    version = f'coalesce(one(data.aws_eks_cluster.{running_key}[*].version), "1.36")'
    minor = f'tonumber(split(".", {version})[1])'
    assert check["condition"] == f"${{{minor} <= 36 && 36 <= {minor} + 1}}"
    assert check["error_message"].startswith(f"cluster.version 1.36 cannot follow the running cluster's ${{{version}}}")


def test_control_plane_log_group_outlives_a_destroy_and_is_adopted_when_it_exists(synth):
    """EKS re-creates /aws/eks/<name>/cluster after a destroy (DESIGN fact 14): the stack keeps the
    group and imports one of exactly that name when it exists outside state."""
    doc = synth["prod"]
    (key, group), = ((k, g) for k, g in resources(doc, "aws_cloudwatch_log_group").items() if "log-group" in k)
    assert group["name"] == "/aws/eks/platform-prod/cluster" and group["skip_destroy"] is True
    (lookup_key, lookup), = doc["data"]["aws_cloudwatch_log_groups"].items()
    assert lookup["log_group_name_prefix"] == "/aws/eks/platform-prod/cluster" and "depends_on" not in lookup
    (block,) = doc["import"]
    assert block == {
        "for_each": (f"${{toset([for n in data.aws_cloudwatch_log_groups.{lookup_key}.log_group_names : "
                     f'n if n == "/aws/eks/platform-prod/cluster"])}}'),
        "to": f"aws_cloudwatch_log_group.{key}",
        "id": "${each.value}",
    }


def test_irsa_trusts_read_the_issuer_from_the_oidc_provider(synth):
    """Not from the cluster: a version update then leaves every IRSA role's trust known at plan."""
    doc = synth["prod"]
    provider = next(iter(resources(doc, "aws_iam_openid_connect_provider")))
    for statement in (s for d in doc["data"]["aws_iam_policy_document"].values() for s in d["statement"]
                      if "sts:AssumeRoleWithWebIdentity" in s["actions"]):
        for condition in statement["condition"]:
            assert condition["variable"].startswith(
                f'${{replace(aws_iam_openid_connect_provider.{provider}.url, "https://", "")}}:')


def test_private_access_cidrs_open_https_on_the_cluster_security_group(synth):
    """t-cloud (the Terraform Cloud example behind an agent pool): one 443 ingress rule per listed network on
    the EKS-created cluster security group (where the private endpoint's interfaces are), keyed by the
    network; none where the list is empty."""
    doc = synth["t-cloud"]
    cluster_key = next(iter(resources(doc, "aws_eks_cluster")))
    assert one(doc, "aws_eks_cluster")["vpc_config"]["endpoint_public_access"] is False
    rules = resources(doc, "aws_vpc_security_group_ingress_rule")
    assert list(rules) == [k for k in rules if "private-api-10-20-0-0-24" in k] and len(rules) == 1
    (rule,) = rules.values()
    assert rule["security_group_id"] == f"${{aws_eks_cluster.{cluster_key}.vpc_config[0].cluster_security_group_id}}"
    assert (rule["cidr_ipv4"], rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("10.20.0.0/24", "tcp", 443, 443)
    for stack in ("dev", "prod", "t-alt"):
        assert "aws_vpc_security_group_ingress_rule" not in synth[stack]["resource"]


def test_a_cloud_environment_without_a_public_endpoint_is_warned_at_every_plan(synth):
    """Terraform Cloud's runners are outside every VPC: a check block (a warning, not an error) says at every
    plan that only an agent pool that reaches the private endpoint can plan it; no such warning elsewhere."""
    check = synth["t-cloud"]["check"]["private-endpoint"]
    (assertion,) = check["assert"]
    cluster_key = next(iter(resources(synth["t-cloud"], "aws_eks_cluster")))
    # the planned value, false: Terraform refuses a condition that refers to nothing
    assert assertion["condition"] == f"${{aws_eks_cluster.{cluster_key}.vpc_config[0].endpoint_public_access}}"
    assert "agent pool" in assertion["error_message"] and "cluster.private_access_cidrs" in assertion["error_message"]
    for stack in ("dev", "prod", "t-alt"):
        assert "private-endpoint" not in synth[stack].get("check", {})


def test_a_new_cluster_is_refused_without_the_kept_logs_key_and_a_running_one_warned(synth):
    """DESIGN fact 25: the kept group's key must outlive the environment. Without the account's kept-logs
    key a new environment is refused at plan; a running one is warned about (it keeps its key)."""
    doc = synth["prod"]
    (lookup,) = doc["data"]["aws_ssm_parameters_by_path"].values()
    (refusal,) = lookup["lifecycle"]["postcondition"]
    assert refusal["condition"].startswith("${length(self.names) > 0 || contains(data.aws_eks_clusters.")
    assert "npx cdktf deploy state-bootstrap" in refusal["error_message"]
    warning = doc["check"]["kept_logs_key"]["assert"][0]
    assert "which a destroy schedules for deletion" in warning["error_message"]


def test_the_kept_logs_key_lives_in_the_bootstrap_never_destroyed_for_every_region(synth):
    boot = synth["state-bootstrap"]
    keys = resources(boot, "aws_kms_key")
    kept = {k: v for k, v in keys.items() if k.startswith("kept-logs-key-")}
    assert sorted(kept) == ["kept-logs-key-us-west-2"]  # dev and prod: one region, one key
    (key,) = kept.values()
    assert key["lifecycle"] == {"prevent_destroy": True} and key["enable_key_rotation"] is True
    (alias,) = resources(boot, "aws_kms_alias").values()
    assert alias["name"] == "alias/platform/kept-logs"
    (parameter,) = resources(boot, "aws_ssm_parameter").values()
    assert parameter["name"] == "/platform/kept-logs/key-arn" and parameter["type"] == "String"
    assert parameter["value"].startswith("${aws_kms_key.kept-logs-key-us-west-2")


def test_a_terraform_cloud_only_project_gets_the_bootstrap_stack_for_its_kept_logs_key(tmp_path):
    """No state bucket to create, but the kept-logs key (and the Spot role) are still the account's."""
    import json as _json

    from stacks.config import ENVIRONMENTS_DIR, load_config
    from stacks.platform import build_app
    from stacks.state_bucket import STACK_NAME

    config = load_config(ENVIRONMENTS_DIR / "examples" / "tfc.yaml")
    build_app({"tfc": config}, outdir=str(tmp_path), bootstrap_only=True).synth()
    doc = _json.loads((tmp_path / "stacks" / STACK_NAME / "cdk.tf.json").read_text())
    assert "aws_s3_bucket" not in doc["resource"]
    assert [v["name"] for v in doc["resource"]["aws_kms_alias"].values()] == ["alias/platform/kept-logs"]
