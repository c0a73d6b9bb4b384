"""Self-test of the emulator extension (tests/emulator/moto_plus.py), so it fails loudly when moto
changes under it.

Two servers on 127.0.0.1: the patched one must behave like EKS where the stack needs it (cluster
accessConfig, cluster security group in EC2, per-cluster OIDC issuer, access entries, node groups
without invented remote access, updates), and a stock one must still show every gap the patches
fill: when an upgrade fixes one upstream, its assertion here fails and the patch can go.
"""

from __future__ import annotations

import subprocess
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


# ----------------------------------------------------------------------------- stock moto still has the gaps


def test_stock_moto_still_has_the_gaps(stock):
    """Each assertion is one gap a patch fills. If one fails after a moto upgrade, moto fixed that gap
    upstream: drop the matching patch from moto_plus.PATCHES and this assertion, then move the pin."""
    import moto.eks.models as models
    import moto.eks.responses as responses
    import moto.eks.urls as urls

    # access_entries / cluster_updates: no handlers, no routes
    for handler in ("create_access_entry", "describe_access_entry", "list_access_entries", "delete_access_entry",
                    "associate_access_policy", "describe_update", "list_updates"):
        assert not hasattr(responses.EKSResponse, handler), f"moto now implements {handler}"
    assert not any("access-entries" in path or "/updates" in path for path in urls.url_paths)
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
