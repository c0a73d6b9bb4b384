"""The stack: backends, provider tags, outputs, stable addresses of stateful resources, snapshot."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ROOT, resources

SEED_OUTPUTS = ["cluster_name", "cluster_endpoint", "cluster_arn", "kubeconfig", "oidc_provider_arn", "oidc_provider_url",
                "vpc_id", "private_subnet_ids", "public_subnet_ids", "karpenter_node_role_arn",
                "karpenter_controller_role_arn", "karpenter_interruption_queue_name"]


def test_s3_backend_per_environment_with_native_locking(synth):
    for env in ("dev", "prod"):
        backend = synth[env]["terraform"]["backend"]
        assert backend == {"s3": {"bucket": "my-org-terraform-state", "key": f"{env}/terraform.tfstate",
                                  "region": "us-west-2", "encrypt": True, "use_lockfile": True}}


def test_cloud_backend_names_organization_and_workspace(synth):
    assert synth["t-cloud"]["terraform"]["cloud"] == {
        "hostname": "app.terraform.io", "organization": "my-org", "workspaces": {"name": "platform-tfc"}}
    assert "backend" not in synth["t-cloud"]["terraform"]


def test_local_backend_for_trials(synth):
    assert synth["t-alt"]["terraform"]["backend"] == {"local": {"path": "terraform.t-alt.tfstate"}}


def test_provider_versions_are_pinned_to_what_the_bindings_generate(synth):
    providers = synth["dev"]["terraform"]["required_providers"]
    assert providers["aws"] == {"source": "aws", "version": "5.100.0"}
    assert providers["helm"]["version"].startswith("3.") and providers["kubernetes"]["version"].startswith("2.")


def test_aws_provider_region_and_default_tags(synth):
    (aws,) = synth["prod"]["provider"]["aws"]
    assert aws["region"] == "us-west-2"
    assert aws["default_tags"] == [{"tags": {"Environment": "prod", "ManagedBy": "cdktf", "Cluster": "platform-prod",
                                             "Project": "eks-platform", "Owner": "platform-team"}}]
    assert "access_key" not in aws and "skip_credentials_validation" not in aws


def test_emulator_switch_only_adds_skips_and_no_keys(synth):
    (aws,) = synth["t-alt"]["provider"]["aws"]  # emulator.enabled: true
    # no keys in the JSON: the emulator rung's identity (the deployer policy's user) is the environment's
    assert "access_key" not in aws and "secret_key" not in aws and aws["s3_use_path_style"] is True
    assert aws["skip_credentials_validation"] is True and "endpoints" not in aws


def test_all_twelve_seed_outputs_by_exact_name(env_json):
    assert sorted(env_json["output"]) == sorted(SEED_OUTPUTS)
    assert all(o.get("description") for o in env_json["output"].values())


# Renaming any of these destroys and recreates real infrastructure (a whole cluster, a VPC, the key
# that encrypts every secret). A change here is a migration: use `moved` blocks, never just update.
STATEFUL_ADDRESSES = {
    "aws_vpc": "network_vpc_4E8F0223",
    "aws_eks_cluster": "cluster_A4C38409",
    "aws_kms_key": "kms-key",
    "aws_sqs_queue": "karpenter_interruption-queue_1712F3B7",
    "aws_eks_node_group": "cluster_controller-nodes_F40AC391",
    "aws_iam_openid_connect_provider": "cluster_oidc-provider_6677C701",
}


@pytest.mark.parametrize("rtype", sorted(STATEFUL_ADDRESSES))
def test_stateful_resource_addresses_are_pinned(synth, rtype):
    for env in ("dev", "prod"):
        assert list(resources(synth[env], rtype)) == [STATEFUL_ADDRESSES[rtype]]


def _strip_metadata(node):
    """Drop cdktf's "//" metadata (construct paths, backend notes): not part of the infrastructure."""
    if isinstance(node, dict):
        return {k: _strip_metadata(v) for k, v in node.items() if k != "//"}
    if isinstance(node, list):
        return [_strip_metadata(v) for v in node]
    return node


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_snapshot(synth, env):
    """A readable regression snapshot; refresh with UPDATE_SNAPSHOTS=1 after an intended change and review the diff."""
    path = ROOT / "tests" / "snapshots" / f"{env}.tf.json"
    current = json.dumps(_strip_metadata(synth[env]), indent=2, sort_keys=True) + "\n"
    assert str(ROOT) not in current and "/tmp" not in current  # no absolute paths
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(current)
    assert current == path.read_text(), f"{env} synth changed; review and rerun with UPDATE_SNAPSHOTS=1"


def _empty_blocks(node, path=""):
    if isinstance(node, dict):
        if not node and not path.endswith(("metadata", "//")):
            yield path
        for key, value in node.items():
            yield from _empty_blocks(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _empty_blocks(value, f"{path}[{i}]")


def test_no_block_was_silently_dropped(synth):
    """jsii turns a nested dict it cannot map to a struct into ``{}`` without an error: catch that."""
    for stack in ("dev", "prod", "t-cloud", "state-bootstrap"):
        assert list(_empty_blocks(synth[stack])) == [], stack


def test_the_json_names_the_terraform_it_needs(env_json):
    """1.10: the S3 lock file; 1.10.1: an import for_each onto a resource without for_each."""
    assert env_json["terraform"]["required_version"] == ">= 1.10.1"
