"""Self-test of the emulator extension (tests/emulator/moto_plus.py), so it fails loudly when moto
changes under it.

Two servers on 127.0.0.1: the patched one must behave like EKS where the stack needs it (cluster
accessConfig, cluster security group in EC2, per-cluster OIDC issuer, access entries and policies,
node groups without invented remote access, updates, Kubernetes versions and upgrades, upgrade
policy, add-ons, KMS keys of log groups, EC2's refusals to delete what is still in use, EC2 Service
Quotas), and a stock one must still show every gap the patches fill: when an upgrade fixes one upstream,
its assertion here fails and the patch can go.
"""

from __future__ import annotations

import re
import subprocess
import time
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.emulator import moto_plus
from tests.emulator.server import ACCOUNT_ID, Emulator, running_emulator

pytestmark = pytest.mark.emulator

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/selftest-cluster"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/selftest-node"
ADMIN = f"arn:aws:iam::{ACCOUNT_ID}:role/team/selftest-admin"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
ACCESS_CONFIG = {"authenticationMode": "API_AND_CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": False}


@pytest.fixture(scope="module")
def plus(tmp_path_factory) -> Emulator:
    with running_emulator(tmp_path_factory.mktemp("moto-plus")) as emu:
        yield emu


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> Emulator:
    with running_emulator(tmp_path_factory.mktemp("moto-stock"), patched=False) as emu:
        yield emu


def network(emu: Emulator) -> tuple[str, list[str]]:
    ec2 = emu.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    return vpc, subnets


def cluster(emu: Emulator, name: str, subnets: list[str], **extra) -> dict:
    return emu.client("eks").create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig={"subnetIds": subnets},
                                            **extra)["cluster"]


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


# ----------------------------------------------------------------------------- the pin


def test_version_pin():
    import moto

    assert moto.__version__ == moto_plus.PINNED_MOTO_VERSION, (
        f"moto {moto.__version__} is installed; the extension is pinned to {moto_plus.PINNED_MOTO_VERSION}")
    assert moto_plus.check_moto_version() == moto_plus.PINNED_MOTO_VERSION
    with pytest.raises(moto_plus.MotoVersionError, match="5.2.5 internals but moto 5.3.0 is installed"):
        moto_plus.check_moto_version("5.3.0")


def test_server_refuses_another_moto_version(tmp_path):
    """The emulator entry point itself fails loudly (before binding a port) under another moto."""
    script = ("import runpy, sys, moto; moto.__version__ = '5.3.0'; sys.argv = ['moto_plus', '-p', '0']; "
              f"runpy.run_path({str(Path(moto_plus.__file__))!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert "MotoVersionError" in proc.stderr and "moto 5.3.0 is installed" in proc.stderr, proc.stderr[-2000:]


# ----------------------------------------------------------------------------- patched server


def test_cluster_access_config_and_security_group(plus):
    eks, ec2 = plus.client("eks"), plus.client("ec2")
    vpc, subnets = network(plus)
    created = cluster(plus, "selftest", subnets, accessConfig=ACCESS_CONFIG)
    assert created["accessConfig"] == ACCESS_CONFIG

    described = eks.describe_cluster(name="selftest")["cluster"]
    assert described["accessConfig"] == ACCESS_CONFIG
    vpc_config = described["resourcesVpcConfig"]
    assert vpc_config["vpcId"] == vpc
    assert vpc_config["subnetIds"] == subnets
    assert (vpc_config["endpointPublicAccess"], vpc_config["endpointPrivateAccess"]) == (True, False)
    assert vpc_config["publicAccessCidrs"] == ["0.0.0.0/0"]
    group_id = vpc_config["clusterSecurityGroupId"]
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["VpcId"] == vpc
    assert {"Key": "aws:eks:cluster-name", "Value": "selftest"} in group["Tags"]

    # aws_ec2_tag on the cluster SG is what stock moto broke: tagging it must work
    ec2.create_tags(Resources=[group_id], Tags=[{"Key": "karpenter.sh/discovery", "Value": "selftest"}])

    # in-place updates keep the SG and complete (DescribeUpdate)
    update = eks.update_cluster_config(name="selftest", resourcesVpcConfig={"publicAccessCidrs": ["10.0.0.0/8"]})
    assert eks.describe_update(name="selftest", updateId=update["update"]["id"])["update"]["status"] == "Successful"
    update = eks.update_cluster_config(name="selftest", accessConfig={"authenticationMode": "API"})["update"]
    assert update["type"] == "AccessConfigUpdate"
    assert update["id"] in eks.list_updates(name="selftest")["updateIds"]
    after = eks.describe_cluster(name="selftest")["cluster"]
    assert after["accessConfig"]["authenticationMode"] == "API"
    assert after["resourcesVpcConfig"]["clusterSecurityGroupId"] == group_id
    assert after["resourcesVpcConfig"]["publicAccessCidrs"] == ["10.0.0.0/8"]
    assert after["resourcesVpcConfig"]["subnetIds"] == subnets

    # EKS's default access config when none is sent; unknown subnets are refused (no SG leaks)
    default = cluster(plus, "selftest-default", subnets)
    assert default["accessConfig"] == {"authenticationMode": "CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": True}
    groups_before = len(ec2.describe_security_groups()["SecurityGroups"])
    with pytest.raises(ClientError) as exc:
        cluster(plus, "selftest-bad", ["subnet-0000000000000000"])
    assert code(exc) == "InvalidParameterException"
    assert len(ec2.describe_security_groups()["SecurityGroups"]) == groups_before

    # one OIDC issuer per cluster
    issuers = {eks.describe_cluster(name=n)["cluster"]["identity"]["oidc"]["issuer"] for n in ("selftest", "selftest-default")}
    assert len(issuers) == 2
    assert all(i.startswith("https://oidc.eks.us-east-1.amazonaws.com/id/") for i in issuers)

    # deleting the cluster deletes its security group
    default_group = default["resourcesVpcConfig"]["clusterSecurityGroupId"]
    for name in ("selftest", "selftest-default"):
        eks.delete_cluster(name=name)
    for gid in (group_id, default_group):
        with pytest.raises(ClientError) as exc:
            ec2.describe_security_groups(GroupIds=[gid])
        assert code(exc) == "InvalidGroup.NotFound"


def test_access_entries(plus):
    eks = plus.client("eks")
    _, subnets = network(plus)
    cluster(plus, "entries", subnets, accessConfig=ACCESS_CONFIG)

    entry = eks.create_access_entry(clusterName="entries", principalArn=ADMIN, kubernetesGroups=["platform-admins"],
                                    tags={"team": "platform"})["accessEntry"]
    assert entry["type"] == "STANDARD" and entry["username"] == ADMIN
    assert entry["accessEntryArn"].startswith(f"arn:aws:eks:us-east-1:{ACCOUNT_ID}:access-entry/entries/role/")
    node = eks.create_access_entry(clusterName="entries", principalArn=NODE_ROLE, type="EC2_LINUX")["accessEntry"]
    assert node["username"] == "system:node:{{EC2PrivateDNSName}}"

    described = eks.describe_access_entry(clusterName="entries", principalArn=ADMIN)["accessEntry"]
    assert described["kubernetesGroups"] == ["platform-admins"] and described["tags"] == {"team": "platform"}
    assert sorted(eks.list_access_entries(clusterName="entries")["accessEntries"]) == sorted([ADMIN, NODE_ROLE])

    with pytest.raises(ClientError) as exc:
        eks.create_access_entry(clusterName="entries", principalArn=ADMIN)
    assert code(exc) == "ResourceInUseException"
    with pytest.raises(ClientError) as exc:
        eks.create_access_entry(clusterName="entries", principalArn=f"{NODE_ROLE}-2", type="EC2_LINUX",
                                kubernetesGroups=["x"])
    assert code(exc) == "InvalidParameterException"

    updated = eks.update_access_entry(clusterName="entries", principalArn=ADMIN, kubernetesGroups=["a", "b"])
    assert updated["accessEntry"]["kubernetesGroups"] == ["a", "b"]

    eks.associate_access_policy(clusterName="entries", principalArn=ADMIN, policyArn=ADMIN_POLICY,
                                accessScope={"type": "cluster"})
    policies = eks.list_associated_access_policies(clusterName="entries", principalArn=ADMIN)["associatedAccessPolicies"]
    assert [p["policyArn"] for p in policies] == [ADMIN_POLICY]
    eks.disassociate_access_policy(clusterName="entries", principalArn=ADMIN, policyArn=ADMIN_POLICY)
    assert eks.list_associated_access_policies(clusterName="entries", principalArn=ADMIN)["associatedAccessPolicies"] == []

    eks.tag_resource(resourceArn=entry["accessEntryArn"], tags={"env": "test"})
    assert eks.list_tags_for_resource(resourceArn=entry["accessEntryArn"])["tags"] == {"team": "platform", "env": "test"}
    eks.untag_resource(resourceArn=entry["accessEntryArn"], tagKeys=["team"])
    assert eks.list_tags_for_resource(resourceArn=entry["accessEntryArn"])["tags"] == {"env": "test"}

    eks.delete_access_entry(clusterName="entries", principalArn=ADMIN)
    with pytest.raises(ClientError) as exc:
        eks.describe_access_entry(clusterName="entries", principalArn=ADMIN)
    assert code(exc) == "ResourceNotFoundException"
    assert eks.list_access_entries(clusterName="entries")["accessEntries"] == [NODE_ROLE]
    eks.delete_cluster(name="entries")
    with pytest.raises(ClientError) as exc:
        eks.list_access_entries(clusterName="entries")
    assert code(exc) == "ResourceNotFoundException"


def test_nodegroups(plus):
    eks = plus.client("eks")
    _, subnets = network(plus)
    cluster(plus, "nodes", subnets)

    plain = eks.create_nodegroup(clusterName="nodes", nodegroupName="plain", nodeRole=NODE_ROLE, subnets=subnets,
                                 scalingConfig={"minSize": 1, "maxSize": 2, "desiredSize": 1})["nodegroup"]
    assert "remoteAccess" not in plain
    assert "remoteAccessSecurityGroup" not in plain["resources"]
    described = eks.describe_nodegroup(clusterName="nodes", nodegroupName="plain")["nodegroup"]
    assert "remoteAccess" not in described
    assert described["updateConfig"] == {"maxUnavailable": 1}

    ssh = eks.create_nodegroup(clusterName="nodes", nodegroupName="ssh", nodeRole=NODE_ROLE, subnets=subnets,
                               remoteAccess={"ec2SshKey": "ops"}, updateConfig={"maxUnavailablePercentage": 25})
    assert ssh["nodegroup"]["remoteAccess"] == {"ec2SshKey": "ops"}
    assert ssh["nodegroup"]["updateConfig"] == {"maxUnavailablePercentage": 25}

    eks.tag_resource(resourceArn=plain["nodegroupArn"], tags={"team": "platform"})
    assert eks.list_tags_for_resource(resourceArn=plain["nodegroupArn"])["tags"]["team"] == "platform"

    update = eks.update_nodegroup_config(clusterName="nodes", nodegroupName="plain",
                                         scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 2})["update"]
    got = eks.describe_update(name="nodes", nodegroupName="plain", updateId=update["id"])["update"]
    assert got["status"] == "Successful"
    with pytest.raises(ClientError) as exc:
        eks.describe_update(name="nodes", updateId=update["id"])  # a node group update is not a cluster update
    assert code(exc) == "ResourceNotFoundException"

    for name in ("plain", "ssh"):
        eks.delete_nodegroup(clusterName="nodes", nodegroupName=name)
    eks.delete_cluster(name="nodes")


def test_kubernetes_versions_and_upgrades(plus):
    eks = plus.client("eks")
    _, subnets = network(plus)
    assert cluster(plus, "default-version", subnets)["version"] == moto_plus.DEFAULT_KUBERNETES_VERSION == "1.36"
    eks.delete_cluster(name="default-version")
    with pytest.raises(ClientError) as exc:
        cluster(plus, "too-old", subnets, version="1.19")
    assert code(exc) == "InvalidParameterException" and "unsupported Kubernetes version" in str(exc.value)

    cluster(plus, "steps", subnets, version="1.34")
    group = eks.create_nodegroup(clusterName="steps", nodegroupName="ng", nodeRole=NODE_ROLE,
                                 subnets=subnets)["nodegroup"]
    assert (group["version"], group["releaseVersion"]) == ("1.34", "1.34.9-20260714")  # the cluster's, newest AMI
    with pytest.raises(ClientError) as exc:  # a node group newer than its cluster
        eks.create_nodegroup(clusterName="steps", nodegroupName="ahead", nodeRole=NODE_ROLE, subnets=subnets,
                             version="1.35")
    assert code(exc) == "InvalidParameterException"

    # one minor at a time, in EKS's words; no downgrade either
    for version in ("1.36", "1.33", "1.34"):
        with pytest.raises(ClientError) as exc:
            eks.update_cluster_version(name="steps", version=version)
        assert code(exc) == "InvalidParameterException"
        assert exc.value.response["Error"]["Message"] == f"Unsupported Kubernetes minor version update from 1.34 to {version}"
    update = eks.update_cluster_version(name="steps", version="1.35")["update"]
    assert update["type"] == "VersionUpdate" and {"type": "Version", "value": "1.35"} in update["params"]
    assert eks.describe_update(name="steps", updateId=update["id"])["update"]["status"] == "Successful"
    assert eks.describe_cluster(name="steps")["cluster"]["version"] == "1.35"

    # the node group lags: the next control-plane step is refused until it follows
    with pytest.raises(ClientError) as exc:
        eks.update_cluster_version(name="steps", version="1.36")
    assert exc.value.response["Error"]["Message"] == \
        "Nodegroups ng must be updated to match cluster version 1.35 before updating cluster version"
    with pytest.raises(ClientError) as exc:  # not past the cluster
        eks.update_nodegroup_version(clusterName="steps", nodegroupName="ng", version="1.36")
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:  # a release of another minor, in EKS's words
        eks.update_nodegroup_version(clusterName="steps", nodegroupName="ng", version="1.35",
                                     releaseVersion="1.34.9-20260714")
    assert exc.value.response["Error"]["Message"] == \
        "Requested Nodegroup release version 1.34.9-20260714 is invalid. Allowed release version is 1.35.6-20260714"
    update = eks.update_nodegroup_version(clusterName="steps", nodegroupName="ng")["update"]  # default: the cluster's
    assert update["type"] == "VersionUpdate"
    got = eks.describe_update(name="steps", nodegroupName="ng", updateId=update["id"])["update"]
    assert got["status"] == "Successful"
    group = eks.describe_nodegroup(clusterName="steps", nodegroupName="ng")["nodegroup"]
    assert (group["version"], group["releaseVersion"]) == ("1.35", "1.35.6-20260714")
    assert update["id"] in eks.list_updates(name="steps", nodegroupName="ng")["updateIds"]
    eks.update_cluster_version(name="steps", version="1.36")
    eks.update_nodegroup_version(clusterName="steps", nodegroupName="ng", version="1.36")
    with pytest.raises(ClientError) as exc:  # past the newest version the emulator (and EKS) knows
        eks.update_cluster_version(name="steps", version="1.37")
    assert code(exc) == "InvalidParameterException" and "unsupported Kubernetes version" in str(exc.value)
    with pytest.raises(ClientError) as exc:  # no node group downgrade
        eks.update_nodegroup_version(clusterName="steps", nodegroupName="ng", version="1.35")
    assert code(exc) == "InvalidParameterException"
    eks.delete_nodegroup(clusterName="steps", nodegroupName="ng")
    eks.delete_cluster(name="steps")


def test_upgrade_policy(plus):
    eks = plus.client("eks")
    _, subnets = network(plus)
    assert cluster(plus, "policy", subnets, upgradePolicy={"supportType": "STANDARD"})["upgradePolicy"] == \
        {"supportType": "STANDARD"}
    assert eks.describe_cluster(name="policy")["cluster"]["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster(plus, "policy-default", subnets)["upgradePolicy"] == {"supportType": "EXTENDED"}  # EKS's default

    update = eks.update_cluster_config(name="policy", upgradePolicy={"supportType": "EXTENDED"})["update"]
    assert update["type"] == "UpgradePolicyUpdate"
    assert eks.describe_update(name="policy", updateId=update["id"])["update"]["status"] == "Successful"
    assert eks.describe_cluster(name="policy")["cluster"]["upgradePolicy"] == {"supportType": "EXTENDED"}
    with pytest.raises(ClientError) as exc:  # one kind of update per call, as in EKS
        eks.update_cluster_config(name="policy", upgradePolicy={"supportType": "STANDARD"},
                                  logging={"clusterLogging": [{"types": ["api"], "enabled": True}]})
    assert exc.value.response["Error"]["Message"] == "Only one type of update can be allowed."
    with pytest.raises(ClientError) as exc:
        cluster(plus, "policy-bad", subnets, upgradePolicy={"supportType": "FOREVER"})
    assert code(exc) == "InvalidParameterException"
    assert "policy-bad" not in eks.list_clusters()["clusters"]
    for name in ("policy", "policy-default"):
        eks.delete_cluster(name=name)


def test_addon_versions(plus):
    eks = plus.client("eks")
    for version in moto_plus.KUBERNETES_PATCHES:
        for addon in ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "eks-pod-identity-agent"):
            (info,) = eks.describe_addon_versions(addonName=addon, kubernetesVersion=version)["addons"]
            assert info["addonName"] == addon and info["owner"] == "aws"
            versions = info["addonVersions"]
            assert versions and all(v["addonVersion"].startswith("v") and "-eksbuild." in v["addonVersion"]
                                    for v in versions)
            assert all([c["clusterVersion"] for c in v["compatibilities"]] == [version] for v in versions)
            defaults = [v["addonVersion"] for v in versions if v["compatibilities"][0]["defaultVersion"]]
            assert defaults == [moto_plus.default_addon_version(addon, version)], (addon, version, defaults)
            if addon == "kube-proxy":
                assert all(v["addonVersion"].startswith(f"v{version}.") for v in versions)
    (cni,) = eks.describe_addon_versions(addonName="vpc-cni", kubernetesVersion="1.35")["addons"]
    assert [v["addonVersion"] for v in cni["addonVersions"]][:2] == ["v1.23.1-eksbuild.1", "v1.22.4-eksbuild.3"]
    assert moto_plus.default_addon_version("vpc-cni", "1.35") == "v1.22.4-eksbuild.3"  # not the newest, as in EKS
    everything = eks.describe_addon_versions(addonName="coredns")["addons"][0]["addonVersions"]
    assert {c["clusterVersion"] for v in everything for c in v["compatibilities"]} == set(moto_plus.KUBERNETES_PATCHES)
    assert eks.describe_addon_versions(addonName="no-such-addon", kubernetesVersion="1.35")["addons"] == []


def test_aws_moves_its_default_addon_versions(plus):
    """``Emulator.move_addon_defaults``: every default becomes the newest compatible version (as AWS moves
    its defaults under running clusters); a reset moves them back (removes the switch). On stock moto there is no add-on API
    at all (``test_addon_versions``' gap)."""
    eks = plus.client("eks")

    def default(addon: str, version: str) -> str:
        (info,) = eks.describe_addon_versions(addonName=addon, kubernetesVersion=version)["addons"]
        return next(v["addonVersion"] for v in info["addonVersions"] if v["compatibilities"][0]["defaultVersion"])

    before = {a: default(a, "1.35") for a in moto_plus.ADDON_VERSIONS}
    plus.move_addon_defaults()
    try:
        after = {a: default(a, "1.35") for a in moto_plus.ADDON_VERSIONS}
        assert after == {a: moto_plus.addon_versions(a, "1.35")[0] for a in moto_plus.ADDON_VERSIONS}
        assert all(after[a] != before[a] for a in after), (before, after)
    finally:
        plus.addon_defaults.unlink(missing_ok=True)  # what Emulator.reset does too
    assert {a: default(a, "1.35") for a in moto_plus.ADDON_VERSIONS} == before


def test_addons(plus):
    eks = plus.client("eks")
    _, subnets = network(plus)
    cluster(plus, "addons", subnets, version="1.35")
    config = '{"replicaCount": 2, "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}'
    coredns = eks.create_addon(clusterName="addons", addonName="coredns", configurationValues=config,
                               resolveConflicts="OVERWRITE", tags={"team": "platform"})["addon"]
    assert coredns["addonVersion"] == moto_plus.default_addon_version("coredns", "1.35")  # no version: the default
    assert coredns["status"] == "ACTIVE" and coredns["configurationValues"] == config
    assert coredns["addonArn"].startswith(f"arn:aws:eks:us-east-1:{ACCOUNT_ID}:addon/addons/coredns/")
    ebs_role = f"arn:aws:iam::{ACCOUNT_ID}:role/selftest-ebs-csi"
    ebs = eks.create_addon(clusterName="addons", addonName="aws-ebs-csi-driver", addonVersion="v1.48.0-eksbuild.2",
                           serviceAccountRoleArn=ebs_role)["addon"]
    assert ebs["serviceAccountRoleArn"] == ebs_role
    described = eks.describe_addon(clusterName="addons", addonName="coredns")["addon"]
    assert described["tags"] == {"team": "platform"} and described["health"] == {"issues": []}
    assert eks.list_addons(clusterName="addons")["addons"] == ["aws-ebs-csi-driver", "coredns"]

    with pytest.raises(ClientError) as exc:
        eks.create_addon(clusterName="addons", addonName="coredns")
    assert code(exc) == "ResourceInUseException"
    # idempotent on clientRequestToken, as EKS: a retried create (same token) gets the add-on back
    first = eks.create_addon(clusterName="addons", addonName="vpc-cni", clientRequestToken="retry-1")["addon"]
    again = eks.create_addon(clusterName="addons", addonName="vpc-cni", clientRequestToken="retry-1")["addon"]
    assert again["addonArn"] == first["addonArn"] and again["addonVersion"] == first["addonVersion"]
    with pytest.raises(ClientError) as exc:
        eks.create_addon(clusterName="addons", addonName="vpc-cni", clientRequestToken="another")
    assert code(exc) == "ResourceInUseException"
    eks.delete_addon(clusterName="addons", addonName="vpc-cni")
    for bad in ({"addonName": "kube-proxy", "addonVersion": "v1.36.2-eksbuild.25"},  # another Kubernetes minor
                {"addonName": "vpc-cni", "configurationValues": "{not: [json"},
                {"addonName": "vpc-cni", "serviceAccountRoleArn": "not-an-arn"},
                {"addonName": "no-such-addon"}):
        with pytest.raises(ClientError) as exc:
            eks.create_addon(clusterName="addons", **bad)
        assert code(exc) == "InvalidParameterException", bad
    assert eks.list_addons(clusterName="addons")["addons"] == ["aws-ebs-csi-driver", "coredns"]

    update = eks.update_addon(clusterName="addons", addonName="coredns", addonVersion="v1.14.3-eksbuild.16",
                              resolveConflicts="OVERWRITE")["update"]
    assert update["type"] == "AddonUpdate" and {"type": "AddonVersion", "value": "v1.14.3-eksbuild.16"} in update["params"]
    got = eks.describe_update(name="addons", addonName="coredns", updateId=update["id"])["update"]
    assert got["status"] == "Successful"
    with pytest.raises(ClientError) as exc:  # an add-on update is not a cluster update
        eks.describe_update(name="addons", updateId=update["id"])
    assert code(exc) == "ResourceNotFoundException"
    after = eks.describe_addon(clusterName="addons", addonName="coredns")["addon"]
    assert after["addonVersion"] == "v1.14.3-eksbuild.16" and after["configurationValues"] == config
    with pytest.raises(ClientError) as exc:
        eks.update_addon(clusterName="addons", addonName="coredns", addonVersion="v1.14.3-eksbuild.23")  # 1.36 only
    assert code(exc) == "InvalidParameterException"

    eks.tag_resource(resourceArn=coredns["addonArn"], tags={"env": "test"})
    assert eks.list_tags_for_resource(resourceArn=coredns["addonArn"])["tags"] == {"team": "platform", "env": "test"}
    eks.untag_resource(resourceArn=coredns["addonArn"], tagKeys=["team"])
    assert eks.list_tags_for_resource(resourceArn=coredns["addonArn"])["tags"] == {"env": "test"}

    eks.delete_addon(clusterName="addons", addonName="coredns")
    with pytest.raises(ClientError) as exc:
        eks.describe_addon(clusterName="addons", addonName="coredns")
    assert code(exc) == "ResourceNotFoundException"
    assert exc.value.response["Error"]["Message"] == "No addon: coredns found in cluster: addons"
    eks.delete_cluster(name="addons")  # its add-ons go with it
    with pytest.raises(ClientError) as exc:
        eks.list_addons(clusterName="addons")
    assert code(exc) == "ResourceNotFoundException"


def test_pod_identity_agent_and_associations(plus):
    """The agent is an add-on (type security, the pinned version among its versions); associations as EKS
    serves them: one per namespace and service account, described, listed (filtered), updated (role only),
    tagged, deleted, and gone with their cluster."""
    from model.versions import ADDON_VERSIONS

    eks = plus.client("eks")
    _, subnets = network(plus)
    cluster(plus, "podid", subnets, version="1.35")
    (info,) = eks.describe_addon_versions(addonName="eks-pod-identity-agent", kubernetesVersion="1.35")["addons"]
    assert info["type"] == "security"
    assert ADDON_VERSIONS["1.35"]["eks-pod-identity-agent"] in [v["addonVersion"] for v in info["addonVersions"]]
    agent = eks.create_addon(clusterName="podid", addonName="eks-pod-identity-agent",
                             addonVersion=ADDON_VERSIONS["1.35"]["eks-pod-identity-agent"],
                             configurationValues='{"tolerations": [{"operator": "Exists"}]}')["addon"]
    assert agent["status"] == "ACTIVE"

    role = f"arn:aws:iam::{ACCOUNT_ID}:role/selftest-karpenter"
    created = eks.create_pod_identity_association(clusterName="podid", namespace="karpenter", serviceAccount="karpenter",
                                                  roleArn=role, tags={"team": "platform"})["association"]
    assert re.fullmatch(r"a-[a-z0-9]{17}", created["associationId"])
    assert created["associationArn"] == (f"arn:aws:eks:us-east-1:{ACCOUNT_ID}:podidentityassociation/podid/"
                                         f"{created['associationId']}")
    assert (created["namespace"], created["serviceAccount"], created["roleArn"]) == ("karpenter", "karpenter", role)
    other = eks.create_pod_identity_association(clusterName="podid", namespace="kube-system",
                                                serviceAccount="ebs-csi-controller-sa", roleArn=role)["association"]
    for bad, expected in (({"namespace": "karpenter", "serviceAccount": "karpenter", "roleArn": role},
                           "ResourceInUseException"),  # one association per service account
                          ({"namespace": "x", "serviceAccount": "y", "roleArn": "not-an-arn"},
                           "InvalidParameterException")):
        with pytest.raises(ClientError) as exc:
            eks.create_pod_identity_association(clusterName="podid", **bad)
        assert code(exc) == expected, bad
    listed = eks.list_pod_identity_associations(clusterName="podid")["associations"]
    assert sorted(a["associationId"] for a in listed) == sorted([created["associationId"], other["associationId"]])
    (only,) = eks.list_pod_identity_associations(clusterName="podid", namespace="kube-system")["associations"]
    assert only["serviceAccount"] == "ebs-csi-controller-sa" and "roleArn" not in only  # a summary
    described = eks.describe_pod_identity_association(clusterName="podid",
                                                      associationId=created["associationId"])["association"]
    assert described["tags"] == {"team": "platform"} and described["roleArn"] == role

    new_role = f"arn:aws:iam::{ACCOUNT_ID}:role/selftest-karpenter-2"
    updated = eks.update_pod_identity_association(clusterName="podid", associationId=created["associationId"],
                                                  roleArn=new_role)["association"]
    assert updated["roleArn"] == new_role and updated["associationArn"] == created["associationArn"]
    eks.tag_resource(resourceArn=created["associationArn"], tags={"env": "test"})
    assert eks.list_tags_for_resource(resourceArn=created["associationArn"])["tags"] == {"team": "platform", "env": "test"}

    eks.delete_pod_identity_association(clusterName="podid", associationId=created["associationId"])
    with pytest.raises(ClientError) as exc:
        eks.describe_pod_identity_association(clusterName="podid", associationId=created["associationId"])
    assert code(exc) == "ResourceNotFoundException"
    eks.delete_cluster(name="podid")  # the rest goes with it
    with pytest.raises(ClientError) as exc:
        eks.list_pod_identity_associations(clusterName="podid")
    assert code(exc) == "ResourceNotFoundException"


def test_access_policies(plus):
    eks = plus.client("eks")
    _, subnets = network(plus)
    cluster(plus, "policies", subnets, accessConfig=ACCESS_CONFIG)
    listed = {p["name"]: p["arn"] for p in eks.list_access_policies()["accessPolicies"]}
    assert listed["AmazonEKSClusterAdminPolicy"] == ADMIN_POLICY
    eks.create_access_entry(clusterName="policies", principalArn=ADMIN)
    eks.create_access_entry(clusterName="policies", principalArn=NODE_ROLE, type="EC2_LINUX")
    for principal, policy, scope in (
            (ADMIN, "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicyTypo", {"type": "cluster"}),
            (ADMIN, "arn:aws:iam::aws:policy/AdministratorAccess", {"type": "cluster"}),  # an IAM policy
            (ADMIN, ADMIN_POLICY, {"type": "namespace"}),  # namespace scope without namespaces
            (ADMIN, ADMIN_POLICY, {"type": "cluster", "namespaces": ["default"]}),
            (NODE_ROLE, ADMIN_POLICY, {"type": "cluster"})):  # node entries take no policies
        with pytest.raises(ClientError) as exc:
            eks.associate_access_policy(clusterName="policies", principalArn=principal, policyArn=policy,
                                        accessScope=scope)
        assert code(exc) == "InvalidParameterException", (principal, policy, scope)
    assert eks.list_associated_access_policies(clusterName="policies", principalArn=ADMIN)["associatedAccessPolicies"] == []
    eks.associate_access_policy(clusterName="policies", principalArn=ADMIN, policyArn=listed["AmazonEKSViewPolicy"],
                                accessScope={"type": "namespace", "namespaces": ["team-a"]})
    (associated,) = eks.list_associated_access_policies(clusterName="policies",
                                                        principalArn=ADMIN)["associatedAccessPolicies"]
    assert associated["accessScope"] == {"type": "namespace", "namespaces": ["team-a"]}
    eks.delete_cluster(name="policies")


def test_log_group_kms_key(plus):
    logs, kms = plus.client("logs"), plus.client("kms")
    key = kms.create_key(Description="selftest logs")["KeyMetadata"]["Arn"]
    logs.create_log_group(logGroupName="/aws/eks/selftest/cluster")  # what EKS creates: no KMS key
    logs.associate_kms_key(logGroupName="/aws/eks/selftest/cluster", kmsKeyId=key)
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/aws/eks/selftest/cluster")["logGroups"]
    assert group["kmsKeyId"] == key
    logs.disassociate_kms_key(logGroupName="/aws/eks/selftest/cluster")
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/aws/eks/selftest/cluster")["logGroups"]
    assert "kmsKeyId" not in group
    with pytest.raises(ClientError) as exc:
        logs.associate_kms_key(logGroupName="/aws/eks/nothing/cluster", kmsKeyId=key)
    assert code(exc) == "ResourceNotFoundException"
    logs.delete_log_group(logGroupName="/aws/eks/selftest/cluster")


# ----------------------------------------------------------------------------- stock moto still has the gaps


def test_stock_moto_still_has_the_gaps(stock):
    """Each assertion is one gap a patch fills. If one fails after a moto upgrade, moto fixed that gap
    upstream: drop the matching patch from moto_plus.PATCHES and this assertion, then move the pin."""
    import moto.eks.models as models
    import moto.eks.responses as responses
    import moto.eks.urls as urls

    import moto.logs.responses as logs_responses

    # access_entries / access_policies / cluster_updates / cluster_versions / nodegroup_versions /
    # addons: no handlers, no routes; logs_kms_key: no handlers
    for handler in ("create_access_entry", "describe_access_entry", "list_access_entries", "delete_access_entry",
                    "associate_access_policy", "list_access_policies", "describe_update", "list_updates",
                    "update_cluster_version", "update_nodegroup_version", "create_addon", "describe_addon",
                    "list_addons", "update_addon", "delete_addon", "describe_addon_versions",
                    "create_pod_identity_association", "describe_pod_identity_association",
                    "list_pod_identity_associations", "update_pod_identity_association",
                    "delete_pod_identity_association"):
        assert not hasattr(responses.EKSResponse, handler), f"moto now implements {handler}"
    for handler in ("associate_kms_key", "disassociate_kms_key"):
        assert not hasattr(logs_responses.LogsResponse, handler), f"moto now implements logs {handler}"
    assert not any(word in path for path in urls.url_paths
                   for word in ("access-entries", "access-policies", "/updates", "update-version", "addons",
                                "pod-identity-associations"))
    assert models.DEFAULT_KUBERNETES_VERSION == "1.19" and models.DEFAULT_RELEASE_VERSION == "1.19.8-20210414"
    # cluster_oidc_issuer: the issuer is formatted once per process; nodegroup_remote_access: a default key
    assert "/id/{" not in models.ISSUER_TEMPLATE
    assert models.DEFAULT_REMOTE_ACCESS == {"ec2SshKey": "eksKeypair"}

    eks, ec2 = stock.client("eks"), stock.client("ec2")
    _, subnets = network(stock)
    first = cluster(stock, "stock-a", subnets, accessConfig=ACCESS_CONFIG)
    second = cluster(stock, "stock-b", subnets)
    described = eks.describe_cluster(name="stock-a")["cluster"]
    assert "accessConfig" not in described, "moto now returns accessConfig (drop cluster_access_config)"
    assert "clusterSecurityGroupId" not in described["resourcesVpcConfig"], \
        "moto now creates the cluster SG (drop cluster_security_group)"
    assert first["identity"] == second["identity"], "moto now has per-cluster OIDC issuers (drop cluster_oidc_issuer)"

    with pytest.raises(ClientError) as exc:
        eks.create_access_entry(clusterName="stock-a", principalArn=ADMIN)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, "moto now routes access entries"

    update = eks.update_cluster_config(name="stock-a", resourcesVpcConfig={"publicAccessCidrs": ["10.0.0.0/8"]})
    assert "update" not in update, "moto's UpdateClusterConfig now answers an update (revisit cluster_updates)"
    assert "subnetIds" not in eks.describe_cluster(name="stock-a")["cluster"]["resourcesVpcConfig"], \
        "moto now merges the VPC config on update (revisit cluster_updates)"

    nodegroup = eks.create_nodegroup(clusterName="stock-b", nodegroupName="n", nodeRole=NODE_ROLE, subnets=subnets,
                                     updateConfig={"maxUnavailable": 1})["nodegroup"]
    assert nodegroup["remoteAccess"] == {"ec2SshKey": "eksKeypair"}, "moto no longer invents remoteAccess"
    assert "updateConfig" not in nodegroup, "moto now keeps updateConfig (drop nodegroup_update_config)"
    with pytest.raises(ClientError) as exc:
        eks.tag_resource(resourceArn=nodegroup["nodegroupArn"], tags={"a": "b"})
    assert code(exc) == "ResourceNotFoundException", "moto now tags node groups (revisit tagging)"
    assert ec2.describe_security_groups()["SecurityGroups"]  # the stock server answered EC2 too

    # cluster_versions / nodegroup_versions: 1.19 for anything created without a version, any
    # version string taken, node groups at 1.19 in a newer cluster; no UpdateClusterVersion
    assert second["version"] == "1.19", "moto's default Kubernetes version moved (revisit cluster_versions)"
    assert cluster(stock, "stock-any", subnets, version="0.1")["version"] == "0.1", "moto now checks versions"
    cluster(stock, "stock-new", subnets, version="1.35")
    lagging = eks.create_nodegroup(clusterName="stock-new", nodegroupName="n", nodeRole=NODE_ROLE,
                                   subnets=subnets)["nodegroup"]
    assert (lagging["version"], lagging["releaseVersion"]) == ("1.19", "1.19.8-20210414"), \
        "moto now gives node groups their cluster's version (revisit nodegroup_versions)"
    for call in (lambda: eks.update_cluster_version(name="stock-new", version="1.36"),
                 lambda: eks.update_nodegroup_version(clusterName="stock-new", nodegroupName="n"),
                 lambda: eks.create_addon(clusterName="stock-new", addonName="coredns"),
                 lambda: eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.35"),
                 lambda: eks.list_access_policies(),
                 lambda: eks.create_pod_identity_association(clusterName="stock-new", namespace="karpenter",
                                                             serviceAccount="karpenter", roleArn=NODE_ROLE)):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, "moto now routes it"
    # cluster_upgrade_policy: dropped
    policy = cluster(stock, "stock-policy", subnets, upgradePolicy={"supportType": "STANDARD"})
    assert "upgradePolicy" not in policy and "upgradePolicy" not in eks.describe_cluster(name="stock-policy")["cluster"], \
        "moto now keeps upgradePolicy (drop cluster_upgrade_policy)"
    # logs_kms_key: AssociateKmsKey is a 500 (NotImplementedError)
    logs = stock.client("logs")
    logs.create_log_group(logGroupName="/aws/eks/stock/cluster")
    with pytest.raises(ClientError) as exc:
        logs.associate_kms_key(logGroupName="/aws/eks/stock/cluster",
                               kmsKeyId=stock.client("kms").create_key()["KeyMetadata"]["Arn"])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500, "moto now implements AssociateKmsKey"


# ----------------------------------------------------------------------------- delete refusals (issue 16)


def _refusal_cases(emu: Emulator) -> dict[str, tuple]:
    """Each case in its own VPC: ``{case: (delete, undo)}`` where ``delete`` is the call AWS refuses
    while the dependency exists and ``undo`` removes that dependency again."""
    ec2, elb = emu.client("ec2"), emu.client("elb")
    cases: dict[str, tuple] = {}

    def vpc_and_subnet(i: int) -> tuple[str, str]:
        vpc = ec2.create_vpc(CidrBlock=f"10.{100 + i}.0.0/16")["Vpc"]["VpcId"]
        return vpc, ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{100 + i}.1.0/24",
                                      AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]

    def group(vpc: str, name: str) -> str:
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]

    vpc, subnet = vpc_and_subnet(1)
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    cases["subnet with a network interface"] = (lambda s=subnet: ec2.delete_subnet(SubnetId=s),
                                                lambda e=eni: ec2.delete_network_interface(NetworkInterfaceId=e))

    vpc, subnet = vpc_and_subnet(2)
    listener = [{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}]
    sg = group(vpc, "k8s-elb-a1")
    elb.create_load_balancer(LoadBalancerName="a1", Listeners=listener, Subnets=[subnet], SecurityGroups=[sg])
    cases["subnet with a load balancer"] = (lambda s=subnet: ec2.delete_subnet(SubnetId=s), None)
    cases["security group of a load balancer"] = (lambda g=sg: ec2.delete_security_group(GroupId=g),
                                                  lambda: elb.delete_load_balancer(LoadBalancerName="a1"))

    vpc, _ = vpc_and_subnet(3)
    source, target = group(vpc, "k8s-elb-b2"), group(vpc, "eks-cluster-sg")
    rule = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": source}]}]
    ec2.authorize_security_group_ingress(GroupId=target, IpPermissions=rule)
    ec2.authorize_security_group_ingress(GroupId=source, IpPermissions=[  # a rule on itself never blocks
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": source}]}])
    cases["security group another group's rule references"] = (
        lambda g=source: ec2.delete_security_group(GroupId=g),
        lambda t=target: ec2.revoke_security_group_ingress(GroupId=t, IpPermissions=rule))

    vpc, subnet = vpc_and_subnet(4)
    sg = group(vpc, "in-use")
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
    cases["security group of a network interface"] = (lambda g=sg: ec2.delete_security_group(GroupId=g),
                                                      lambda e=eni: ec2.delete_network_interface(NetworkInterfaceId=e))

    vpc = ec2.create_vpc(CidrBlock="10.105.0.0/16")["Vpc"]["VpcId"]
    sg = group(vpc, "left-behind")
    cases["VPC with a non-default security group"] = (lambda v=vpc: ec2.delete_vpc(VpcId=v),
                                                      lambda g=sg: ec2.delete_security_group(GroupId=g))

    vpc = ec2.create_vpc(CidrBlock="10.106.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    cases["VPC with an attached internet gateway"] = (
        lambda v=vpc: ec2.delete_vpc(VpcId=v),
        lambda v=vpc, i=igw: ec2.detach_internet_gateway(InternetGatewayId=i, VpcId=v))

    vpc, subnet = vpc_and_subnet(7)
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=address)["NatGateway"]["NatGatewayId"]
    cases["subnet with a NAT gateway"] = (lambda s=subnet: ec2.delete_subnet(SubnetId=s),
                                          lambda n=nat: ec2.delete_nat_gateway(NatGatewayId=n))
    return cases


def _attempt(call) -> str:
    try:
        call()
    except ClientError as exc:
        return f"{exc.response['Error']['Code']}: {exc.response['Error']['Message']}"
    return "deleted"


def test_deletes_aws_refuses_are_refused(plus):
    """EC2 refuses these deletes with DependencyViolation (AWS's messages); once the dependency is
    gone, the same delete succeeds (nothing is refused for ever), and the NAT gateway's interface
    goes with the gateway."""
    cases = _refusal_cases(plus)
    refused = {case: _attempt(delete) for case, (delete, _) in cases.items()}
    expected_messages = {
        "subnet with a network interface": "has dependencies and cannot be deleted.",
        "subnet with a load balancer": "has dependencies and cannot be deleted.",
        "subnet with a NAT gateway": "has dependencies and cannot be deleted.",
        "security group of a load balancer": "has a dependent object",
        "security group another group's rule references": "has a dependent object",
        "security group of a network interface": "has a dependent object",
        "VPC with a non-default security group": "has dependencies and cannot be deleted.",
        "VPC with an attached internet gateway": "has dependencies and cannot be deleted.",
    }
    assert {c: r.split(":")[0] for c, r in refused.items()} == dict.fromkeys(expected_messages, "DependencyViolation"), \
        refused
    for case, tail in expected_messages.items():
        assert refused[case].endswith(tail), (case, refused[case])
    for case, (delete, undo) in cases.items():
        if undo is not None:
            undo()
            assert _attempt(delete) == "deleted", case


def test_a_volume_in_use_is_refused_by_stock_moto_already(plus, stock):
    """DeleteVolume of an attached volume: ``VolumeInUse`` on both servers (no patch needed; this
    pins it, since the teardown rung relies on it)."""
    for emu in (plus, stock):
        ec2 = emu.client("ec2")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-east-1a"}
                                     )["Instances"][0]["InstanceId"]
        volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")
        assert _attempt(lambda: ec2.delete_volume(VolumeId=volume)).startswith("VolumeInUse:"), emu.url
        ec2.detach_volume(VolumeId=volume, InstanceId=instance)
        assert _attempt(lambda: ec2.delete_volume(VolumeId=volume)) == "deleted"


def _terminated_node_interfaces(emu: Emulator) -> tuple[list[str], str]:
    """A node launched into a subnet and terminated, as Karpenter does: the interfaces left in that
    subnet, and what deleting the subnet then does."""
    ec2 = emu.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.110.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.110.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    node = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[node])
    left = [n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces(
        Filters=[{"Name": "subnet-id", "Values": [subnet]}])["NetworkInterfaces"]]
    return left, _attempt(lambda: ec2.delete_subnet(SubnetId=subnet))


def test_a_terminated_instance_takes_its_primary_interface_with_it(plus, stock):
    """EC2 creates a launched instance's primary interface with DeleteOnTermination: once the node is
    terminated its subnet can be deleted (a zone's removal after its nodes are drained). Stock moto
    keeps the interface in-use, so with ``ec2_delete_dependencies`` the subnet would never go."""
    assert _terminated_node_interfaces(plus) == ([], "deleted")
    left, _ = _terminated_node_interfaces(stock)
    assert len(left) == 1, left


def test_stock_moto_still_deletes_what_aws_refuses(stock):
    """Every refusal above is a gap in stock moto: it deletes all of them (when an upgrade refuses
    one upstream, this fails and that part of ``ec2_delete_dependencies`` can go)."""
    results = {case: _attempt(delete) for case, (delete, _) in _refusal_cases(stock).items()}
    assert results == dict.fromkeys(results, "deleted"), results
# ----------------------------------------------------------------------------- Service Quotas (preflight)


def test_ec2_service_quotas(plus):
    """The preflight's reads (constructs/preflight.py): defaults and applied values of EC2 quotas, an
    increase approved at once, a decrease refused as AWS refuses it."""
    quotas = plus.client("service-quotas")
    default = quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3")["Quota"]
    assert (default["QuotaName"], default["Value"]) == ("EC2-VPC Elastic IPs", 5.0)
    assert default["QuotaArn"] == "arn:aws:servicequotas:us-east-1::ec2/L-0263D0A3"
    applied = quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-DB2E81BA")["Quota"]
    assert (applied["QuotaName"], applied["Value"]) == ("Running On-Demand G and VT instances", 0.0)
    assert applied["QuotaArn"] == f"arn:aws:servicequotas:us-east-1:{ACCOUNT_ID}:ec2/L-DB2E81BA"
    assert {q["QuotaCode"] for q in quotas.list_aws_default_service_quotas(ServiceCode="ec2")["Quotas"]} == \
        set(moto_plus.EC2_QUOTAS)

    request = quotas.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-DB2E81BA", DesiredValue=64)
    assert request["RequestedQuota"]["Status"] == "APPROVED"
    assert quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-DB2E81BA")["Quota"]["Value"] == 64.0
    assert quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode="L-DB2E81BA")["Quota"]["Value"] == 0.0
    assert plus.client("service-quotas", region="us-west-2").get_service_quota(
        ServiceCode="ec2", QuotaCode="L-DB2E81BA")["Quota"]["Value"] == 0.0, "quotas are per region"
    with pytest.raises(ClientError) as exc:
        quotas.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-DB2E81BA", DesiredValue=32)
    assert code(exc) == "IllegalArgumentException"
    with pytest.raises(ClientError) as exc:
        quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-00000000")
    assert code(exc) == "NoSuchResourceException"
    # the vpc quotas moto knows itself are untouched
    assert quotas.get_service_quota(ServiceCode="vpc", QuotaCode="L-F678F1CE")["Quota"]["QuotaCode"] == "L-F678F1CE"


def test_stock_moto_has_no_ec2_service_quotas(stock):
    """service_quotas: stock moto knows only vpc quotas and has no GetAWSDefaultServiceQuota (the
    first call of data.aws_servicequotas_service_quota) nor RequestServiceQuotaIncrease (a 500:
    the response class has no handler)."""
    quotas = stock.client("service-quotas")
    with pytest.raises(ClientError) as exc:
        quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3")
    assert code(exc) == "NoSuchResourceException", "moto now serves EC2 quotas (revisit service_quotas)"
    for call in (lambda: quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3"),
                 lambda: quotas.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-0263D0A3",
                                                               DesiredValue=10)):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500, "moto now implements it"


# ----------------------------------------------------------------------------- IAM enforcement (DESIGN fact 30)

SCOPED = [{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["eks:ListClusters", "eks:DescribeAddonVersions", "ec2:DescribeVpcs"],
     "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
    {"Effect": "Allow", "Action": "servicequotas:GetServiceQuota",
     "Resource": f"arn:aws:servicequotas:us-east-1:{ACCOUNT_ID}:ec2/*"},
    {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:*"},
]}]


def test_iam_enforcement(plus):
    """Under /moto-api/reset-auth: EKS calls pass the signature check; a statement naming resources
    allows (moto names none); aws:RequestedRegion is the request's region; moto_plus's own handlers
    (add-ons, access entries, EC2 Service Quotas) are authorized like moto's; AccessDenied comes in
    each protocol's shape and names the action."""
    with plus.enforce_iam(SCOPED, user="selftest") as identity:
        keys = plus.terraform_keys
        eks = plus.client("eks", keys=keys)
        assert eks.list_clusters()["clusters"] == []
        assert eks.describe_addon_versions(kubernetesVersion="1.35")["addons"]  # moto_plus's handler
        quota = plus.client("service-quotas", keys=keys).get_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3")
        assert quota["Quota"]["Value"] == 5.0
        assert "QueueUrls" not in plus.client("sqs", keys=keys).list_queues()
        plus.client("ec2", keys=keys).describe_vpcs()
        refused = {
            "eks ListAccessEntries (moto_plus)": (lambda: eks.list_access_entries(clusterName="x"),
                                                  "AccessDeniedException", "eks:ListAccessEntries"),
            "eks in another region": (lambda: plus.client("eks", "us-west-2", keys=keys).list_clusters(),
                                      "AccessDeniedException", "eks:ListClusters"),
            "iam (query XML)": (lambda: plus.client("iam", keys=keys).list_roles(), "AccessDenied", "iam:ListRoles"),
            "ec2": (lambda: plus.client("ec2", keys=keys).describe_subnets(), "UnauthorizedOperation",
                    "ec2:DescribeSubnets"),
            "logs (JSON, moto_plus's AssociateKmsKey)": (
                lambda: plus.client("logs", keys=keys).associate_kms_key(logGroupName="g", kmsKeyId="k"),
                "AccessDeniedException", "logs:AssociateKmsKey"),
        }
        for what, (call, error, action) in refused.items():
            with pytest.raises(ClientError) as exc:
                call()
            assert code(exc) == error, (what, exc.value.response)
            assert f"{identity} is not authorized to perform: {action}" in exc.value.response["Error"]["Message"], what
    assert plus.client("iam").list_roles()  # enforcement ends with the context: the harness's keys again


def test_stock_moto_iam_enforcement_still_has_the_gaps(stock):
    """What iam_enforcement mends: stock moto refuses every EKS GET (SignatureDoesNotMatch) and lets no
    resource-scoped statement allow anything."""
    allow_all = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    with stock.enforce_iam(allow_all, user="selftest-all"):
        with pytest.raises(ClientError) as exc:
            stock.client("eks", keys=stock.terraform_keys).list_clusters()
        assert "SignatureDoesNotMatch" in str(exc.value)
    with stock.enforce_iam(SCOPED, user="selftest-scoped"):
        with pytest.raises(ClientError) as exc:
            stock.client("sqs", keys=stock.terraform_keys).list_queues()
        assert "AccessDenied" in str(exc.value) or code(exc) in ("AccessDenied", "AccessDeniedException")
# ----------------------------------------------------------------------------- kept logs and zones (issue 20)


def _group_with_events(emu: Emulator, name: str, key: str) -> None:
    logs = emu.client("logs")
    logs.create_log_group(logGroupName=name, kmsKeyId=key)
    logs.create_log_stream(logGroupName=name, logStreamName="kube-apiserver-audit")
    logs.put_log_events(logGroupName=name, logStreamName="kube-apiserver-audit",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "audit event"}])


def _read(emu: Emulator, name: str) -> list[str]:
    logs = emu.client("logs")
    events = logs.get_log_events(logGroupName=name, logStreamName="kube-apiserver-audit")["events"]
    logs.filter_log_events(logGroupName=name)
    return [e["message"] for e in events]


def test_log_events_need_the_key_they_were_ingested_under(plus):
    """AWS: CloudWatch Logs cannot read (or ingest) events under a KMS key that is disabled or pending
    deletion, and events keep the key they were ingested under when the group gets another one."""
    logs, kms = plus.client("logs"), plus.client("kms")
    old_key, new_key = (kms.create_key(Description=f"selftest {d}")["KeyMetadata"] for d in ("old", "kept"))
    old, new = old_key["KeyId"], new_key["KeyId"]  # moto's KMS key actions take key ids, the logs ones ARNs
    name = "/aws/eks/selftest-kept/cluster"
    _group_with_events(plus, name, old_key["Arn"])
    assert _read(plus, name) == ["audit event"]
    logs.associate_kms_key(logGroupName=name, kmsKeyId=new_key["Arn"])  # later events under the new key
    logs.put_log_events(logGroupName=name, logStreamName="kube-apiserver-audit",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "later event"}])
    kms.schedule_key_deletion(KeyId=old, PendingWindowInDays=30)
    for call in (lambda: logs.get_log_events(logGroupName=name, logStreamName="kube-apiserver-audit"),
                 lambda: logs.filter_log_events(logGroupName=name)):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "AccessDeniedException" and "PendingDeletion" in str(exc.value), exc.value
    kms.cancel_key_deletion(KeyId=old)  # leaves the key Disabled, as AWS does
    with pytest.raises(ClientError) as exc:
        _read(plus, name)
    assert code(exc) == "AccessDeniedException" and "Disabled" in str(exc.value)
    kms.enable_key(KeyId=old)
    assert _read(plus, name) == ["audit event", "later event"]
    kms.disable_key(KeyId=new)  # the group's current key: ingestion fails too
    with pytest.raises(ClientError) as exc:
        logs.put_log_events(logGroupName=name, logStreamName="kube-apiserver-audit",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": "late delivery"}])
    assert code(exc) == "AccessDeniedException"
    kms.enable_key(KeyId=new)
    logs.delete_log_group(logGroupName=name)


def test_an_opted_in_local_zone_is_listed_beside_the_availability_zones(plus):
    ec2 = plus.client("ec2")
    zones = {z["ZoneName"]: z for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    assert zones[moto_plus.LOCAL_ZONE["name"]]["ZoneType"] == "local-zone"
    only = ec2.describe_availability_zones(Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}])
    assert [z["ZoneName"] for z in only["AvailabilityZones"]] == [f"us-east-1{c}" for c in "abcdef"]


def test_stock_moto_reads_events_under_a_key_pending_deletion_and_lists_no_local_zone(stock):
    kms = stock.client("kms")
    key = kms.create_key(Description="stock logs")["KeyMetadata"]
    _group_with_events(stock, "/aws/eks/stock-kept/cluster", key["Arn"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=30)
    assert _read(stock, "/aws/eks/stock-kept/cluster") == ["audit event"], "moto now refuses: drop logs_kms_reads"
    types = {z["ZoneType"] for z in stock.client("ec2").describe_availability_zones()["AvailabilityZones"]}
    assert types == {"availability-zone"}, "moto now lists Local Zones: drop local_zones"


def test_vpc_cni_moves_one_minor_version_at_a_time(plus):
    """EKS: "Updating VPC-CNI can only go up or down 1 minor version at a time" (terraform-aws-eks#2749)."""
    eks = plus.client("eks")
    _, subnets = network(plus)
    cluster(plus, "cni-steps", subnets, version="1.33")
    eks.create_addon(clusterName="cni-steps", addonName="vpc-cni", addonVersion="v1.20.1-eksbuild.3")
    with pytest.raises(ClientError) as exc:
        eks.update_addon(clusterName="cni-steps", addonName="vpc-cni", addonVersion="v1.22.4-eksbuild.3")
    assert code(exc) == "InvalidParameterException" and "1 minor version at a time" in str(exc.value)
    eks.delete_addon(clusterName="cni-steps", addonName="vpc-cni")
    eks.create_addon(clusterName="cni-steps", addonName="vpc-cni", addonVersion="v1.22.4-eksbuild.3")
    eks.update_addon(clusterName="cni-steps", addonName="vpc-cni", addonVersion="v1.23.1-eksbuild.1")  # one up
    assert eks.describe_addon(clusterName="cni-steps", addonName="vpc-cni")["addon"]["addonVersion"] == "v1.23.1-eksbuild.1"
