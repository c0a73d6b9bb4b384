"""The fresh-account preflight (constructs/preflight.py) against the AWS emulator, by real Terraform.

Each check with the account in the bad state and in the good one, through ``terraform plan`` only
(cheap: no resource is created). A bad state runs ``terraform apply -auto-approve`` instead, which
plans first: it must stop with the check's message and leave the account as empty as it was, which
is the promise (a check evaluated only during apply, or a read deferred to apply, would let the
network be built first). The account states are made through the emulator's AWS APIs: Elastic IPs
allocated, the Spot service-linked role created, a quota increase requested, an EKS cluster created.
The zone and controller checks need a stack with another config (tests/variants.py
``EMULATOR_PREFLIGHT``), synthesized with the emulator stack.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.emulator.inventory import inventory, nonempty
from tests.emulator.server import Emulator, bootstrapped, raised_quota
from tests.tf import Terraform, available_providers, strip_unavailable
from tests.variants import EMULATOR, EMULATOR_PREFLIGHT

pytestmark = pytest.mark.emulator

FLAGS = ("-no-color", "-input=false")
NAT_EIPS = ("platform-emu-nat-us-east-1a", "platform-emu-nat-us-east-1b", "platform-emu-nat-us-east-1c")
GPU_WARNING = "karpenter.nodepools.gpu: the account's \"Running On-Demand G and VT instances\" quota in us-east-1 is 0 vCPUs"
SPOT_MESSAGE = "preflight: the account has no Spot service-linked role (AWSServiceRoleForEC2Spot)"


class Plan:
    """One terraform run: exit code, the error and warning messages (Terraform's line wrapping undone)."""

    def __init__(self, tf: Terraform, *args: str) -> None:
        proc = tf.run(*args, *FLAGS, check=False, timeout=300, label=f"preflight: {args[0]}")
        self.code = proc.returncode
        self.text = " ".join(f"{proc.stdout}\n{proc.stderr}".split())
        self.errors = re.findall(r"Error: (?:Resource postcondition failed|[^│]*?) on cdk\.tf\.json", self.text)
        self.warnings = re.findall(r"Warning: Check block assertion failed on cdk\.tf\.json line \d+, in check\.(\S+?)\.assert",
                                   self.text)

    def __contains__(self, words: str) -> bool:
        return " ".join(words.split()) in self.text


@pytest.fixture(scope="module")
def workdirs(emulator_synth, emulator: Emulator, tmp_path_factory) -> dict[str, Terraform]:
    """An initialized Terraform workdir per stack (providers without binaries here stripped)."""
    dirs = {}
    for stack in (EMULATOR, EMULATOR_PREFLIGHT):
        doc = emulator_synth[stack]
        stripped, _ = strip_unavailable(doc, available_providers(doc))
        tf = Terraform(Path(tmp_path_factory.mktemp(stack)), env=emulator.terraform_env())
        tf.write(stripped)
        tf.run("init", *FLAGS, label=f"preflight: init {stack}", timeout=180)
        dirs[stack] = tf
    return dirs


@pytest.fixture
def account(emulator: Emulator) -> Emulator:
    """A fresh account: nothing in it (moto reset; tests/test_emulator.py proves it empties the
    emulator), quotas at AWS's defaults, no Spot role."""
    emulator.reset()
    return emulator


def refused(tf: Terraform, emu: Emulator) -> Plan:
    """``apply -auto-approve`` in a bad state: refused at plan, nothing created (the account holds
    what it held before)."""
    before = inventory(emu)
    run = Plan(tf, "apply", "-auto-approve")
    assert run.code == 1, f"the apply was not refused:\n{run.text[-3000:]}"
    assert "Creation complete" not in run, run.text[-3000:]
    assert inventory(emu) == before, f"a refused apply created resources: {nonempty(inventory(emu))}"
    return run


def allocate(emu: Emulator, count: int, name: str | None = None) -> None:
    ec2 = emu.client("ec2")
    for i in range(count):
        tags = [{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": name.format(i)}]}] if name else []
        ec2.allocate_address(Domain="vpc", TagSpecifications=tags)


# ----------------------------------------------------------------------------- Spot service-linked role


def test_a_fresh_account_refuses_spot_pools_without_the_spot_role(workdirs, account):
    raised_quota(account)  # the Spot role is then the only defect
    run = refused(workdirs[EMULATOR], account)
    assert SPOT_MESSAGE in run
    assert "karpenter.nodepools stateless fail (AuthFailure.ServiceLinkedRoleCreationNotPermitted)" in run
    assert "npx cdktf deploy state-bootstrap" in run
    assert "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com" in run
    # the other thing only the state-bootstrap stack makes: the kept-logs key (constructs/cluster.py)
    assert "cluster: the control-plane log group /aws/eks/platform-emu/cluster outlives a destroy" in run
    assert len(run.errors) == 2, run.errors


def test_a_running_cluster_without_the_spot_role_is_warned_about_not_refused(workdirs, account):
    """An existing environment's plans keep working (an urgent fix must not wait for an account-wide
    role), but every plan says it."""
    ec2 = account.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    raised_quota(account)
    account.client("eks").create_cluster(name="platform-emu", version="1.35",
                                         roleArn="arn:aws:iam::123456789012:role/platform-emu-cluster",
                                         resourcesVpcConfig={"subnetIds": subnets})
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 0, run.text[-3000:]
    assert "spot_service_linked_role" in run.warnings and SPOT_MESSAGE in run


# ----------------------------------------------------------------------------- good state, vCPU warnings


CONTROLLER_REFUSAL = (
    "cluster: 1 controller node of t3.large (cluster.node_desired_size, cluster.node_instance_type) plus the 6 EKS "
    "adds while it updates the group (twice its 3 zones: every karpenter.ami_alias or cluster.version change) need "
    "14 vCPUs, above the account's \"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances\" quota of "
    "{quota} vCPUs in us-east-1 (L-1216C47A)")


def test_a_5_vcpu_account_refuses_controller_nodes_that_cannot_roll(workdirs, account):
    """DESIGN fact 26, the dev figures (1 x t3.large, 3 zones; the emulator stack's): 2 vCPUs fit a new
    account's 5, but an update adds 6 nodes first (EKS: twice the zones), 14 vCPUs: the first ami_alias
    bump would fail. The old check (desired x vCPUs <= quota) passed it."""
    bootstrapped(account)
    run = refused(workdirs[EMULATOR], account)
    assert CONTROLLER_REFUSAL.format(quota=5) in run
    assert "--quota-code L-1216C47A --region us-east-1 --desired-value 18`" in run  # 8 nodes x 2 + stateful's 2
    assert len(run.errors) == 1, run.errors


def test_a_running_cluster_in_a_5_vcpu_account_is_warned_about_not_refused(workdirs, account):
    bootstrapped(account)
    ec2 = account.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    account.client("eks").create_cluster(name="platform-emu", version="1.35",
                                         roleArn="arn:aws:iam::123456789012:role/platform-emu-cluster",
                                         resourcesVpcConfig={"subnetIds": subnets})
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 0, run.text[-3000:]
    assert "controller_nodes_update" in run.warnings and CONTROLLER_REFUSAL.format(quota=5) in run


def test_a_quota_that_rolls_but_cannot_replace_warns_and_counts_the_controllers_for_the_pools(workdirs, account):
    """14 vCPUs: the group rolls (refusal passes), a replacement group (16) does not fit, and the
    on-demand pools see 14 - 16 < 2 left."""
    bootstrapped(account)
    raised_quota(account, value=14)
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 0, run.text[-3000:]
    assert sorted(run.warnings) == ["controller_nodes_replacement", "nodepool_gpu_on-demand_L-DB2E81BA",
                                    "nodepool_stateful_on-demand_L-1216C47A",
                                    "nodepool_stateless_on-demand_L-1216C47A"], run.warnings
    assert "runs a second group of 1 beside it until the old one is drained (create_before_destroy)" in run
    assert "that is 16 vCPUs, above the account's" in run
    assert ("karpenter.nodepools.stateful: the account's \"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) "
            "instances\" quota in us-east-1 is 14 vCPUs (L-1216C47A); the controller nodes may take 16 of it (desired "
            "size, update surge, a replacement group), leaving -2, below the 2 vCPUs") in run


def test_a_raised_account_plans_with_only_the_gpu_quota_warning(workdirs, account):
    bootstrapped(account)
    raised_quota(account)
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 0, run.text[-3000:]
    assert run.warnings == ["nodepool_gpu_on-demand_L-DB2E81BA"], run.warnings
    assert GPU_WARNING in run
    assert "below the 4 vCPUs of its smallest allowed g5/g6 instance" in run
    assert "--quota-code L-DB2E81BA --region us-east-1 --desired-value 64` (the pool's cpu_limit)" in run


def test_a_raised_g_quota_silences_the_gpu_warning(workdirs, account):
    bootstrapped(account)
    raised_quota(account)
    account.client("service-quotas").request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-DB2E81BA",
                                                                   DesiredValue=64)
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 0 and run.warnings == [], (run.warnings, run.text[-3000:])


# ----------------------------------------------------------------------------- Elastic IPs


def test_elastic_ips_allocated_by_others_beyond_the_quota_are_refused(workdirs, account):
    bootstrapped(account)
    raised_quota(account)
    allocate(account, 3)  # 3 others + 3 NAT gateways > the default quota of 5
    run = refused(workdirs[EMULATOR], account)
    assert ("network: a NAT gateway in each of its 3 zones needs 3 Elastic IPs; 3 other addresses are allocated in "
            "us-east-1 and the account's Elastic IP quota there is 5") in run
    assert "--quota-code L-0263D0A3 --region us-east-1 --desired-value 6" in run
    assert "or set network.single_nat_gateway: true" in run
    assert len(run.errors) == 1, run.errors


def test_a_replan_does_not_count_the_stacks_own_elastic_ips(workdirs, account):
    """A running environment's NAT addresses (found by their Name tags) are not counted twice: 3 own +
    2 others = 5 allocated fits the quota of 5 (counting the own ones as others would refuse it)."""
    bootstrapped(account)
    raised_quota(account)
    ec2 = account.client("ec2")
    for name in NAT_EIPS:
        ec2.allocate_address(Domain="vpc", TagSpecifications=[
            {"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": name}]}])
    allocate(account, 2, name="someone-else-{}")
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 0, run.text[-3000:]


# ----------------------------------------------------------------------------- zones and controller nodes


def test_a_zone_without_eks_control_planes_and_too_big_controllers_are_refused(workdirs, account):
    bootstrapped(account)
    run = refused(workdirs[EMULATOR_PREFLIGHT], account)
    assert ("network: the cluster's subnets would use us-east-1e, zone id use1-az3 in this account, where EKS cannot "
            "place a control plane") in run
    # only zones of type availability-zone: the opted-in Local Zone (moto_plus.LOCAL_ZONE) cannot hold the cluster
    assert "from the other zones of us-east-1: us-east-1c, us-east-1d, us-east-1f; then plan again." in run
    assert ("cluster: 1 controller node of m6i.4xlarge (cluster.node_desired_size, cluster.node_instance_type) plus "
            "the 6 EKS adds while it updates the group (twice its 3 zones: every karpenter.ami_alias or cluster.version "
            "change) need 112 vCPUs, above the account's \"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) "
            "instances\" quota of 5 vCPUs in us-east-1 (L-1216C47A)") in run
    # the zone also lacks the type (use1-az3 offers fewer types: the emulator's offerings are AWS's), which the
    # node group's offering check (constructs/cluster.py) refuses too
    assert "cluster.node_instance_type: m6i.4xlarge is not offered in us-east-1e" in run
    assert len(run.errors) == 3, run.errors


# ----------------------------------------------------------------------------- vpc-cni steps (constructs/addons.py)


def running_cluster_with_vpc_cni(emu: Emulator, version: str) -> None:
    """The emulator stack's cluster as an older environment runs it: its controller node group and vpc-cni
    at ``version`` (the emulator refuses, as EKS does, an update of more than one minor)."""
    ec2, eks = emu.client("ec2"), emu.client("eks")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    eks.create_cluster(name="platform-emu", version="1.35", roleArn="arn:aws:iam::123456789012:role/platform-emu-cluster",
                       resourcesVpcConfig={"subnetIds": subnets})
    eks.create_nodegroup(clusterName="platform-emu", nodegroupName="karpenter-controllers-20261204000000000000000001",
                         subnets=subnets, nodeRole="arn:aws:iam::123456789012:role/platform-emu-controller-node")
    eks.create_addon(clusterName="platform-emu", addonName="vpc-cni", addonVersion=version)


def test_a_vpc_cni_jump_of_two_minors_is_refused_at_plan_naming_the_step(workdirs, account):
    """terraform-aws-eks#2749: the pin (v1.22) two minors above what runs (v1.20) would fail half-way
    through the apply; the plan names the minor to set in cluster.addon_versions first."""
    bootstrapped(account)
    raised_quota(account)
    running_cluster_with_vpc_cni(account, "v1.20.1-eksbuild.3")
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 1, run.text[-3000:]
    assert ("cluster.addon_versions: vpc-cni v1.22.4-eksbuild.3 is more than one minor version above the running "
            "v1.20.1-eksbuild.3") in run
    assert "Set cluster.addon_versions.vpc-cni to the latest build of v1.21 in turn, one apply each" in run
    assert len(run.errors) == 1, run.errors


def test_a_vpc_cni_below_the_running_one_is_refused_at_plan(workdirs, account):
    bootstrapped(account)
    raised_quota(account)
    running_cluster_with_vpc_cni(account, "v1.23.1-eksbuild.1")
    run = Plan(workdirs[EMULATOR], "plan")
    assert run.code == 1, run.text[-3000:]
    assert "vpc-cni v1.22.4-eksbuild.3 is below the running v1.23.1-eksbuild.1" in run
    assert "Set cluster.addon_versions.vpc-cni to v1.23.1-eksbuild.1 (or a newer build)" in run


def test_a_running_vpc_cni_at_the_pin_is_not_refused(workdirs, account):
    bootstrapped(account)
    raised_quota(account)
    running_cluster_with_vpc_cni(account, "v1.22.4-eksbuild.3")  # the pin itself: nothing to step
    run = Plan(workdirs[EMULATOR], "plan")
    assert not [e for e in run.errors if "vpc-cni" in e], run.text[-3000:]
