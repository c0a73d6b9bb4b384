"""What a cluster's workloads leave in AWS, created through the emulator's APIs with their real tags
and names, for the teardown rung (tests/test_emulator.py, rung a): the destroy must remove all of
it but the PVC volume (kept on purpose, listed in the destroy output), and leave every look-alike of
another cluster alone.

Tags and names, as their controllers set them:

- EKS cloud controller (``Service`` of type LoadBalancer, kubernetes/cloud-provider-aws): a classic
  ELB named ``a`` + the Service UID without dashes (32 characters), tagged
  ``kubernetes.io/cluster/<name>=owned`` and ``kubernetes.io/service-name=<ns>/<svc>``; its security
  group ``k8s-elb-<lb name>`` (same tags) and an ingress rule on the cluster security group (the
  nodes' group) that references it;
- AWS Load Balancer Controller (an NLB for a Service): ``k8s-<ns>-<svc>-<hash>`` load balancer,
  target group and frontend security group, the shared backend group ``k8s-traffic-<cluster>-<hash>``
  with a rule on the cluster security group, all tagged ``elbv2.k8s.aws/cluster=<name>``,
  ``service.k8s.aws/stack=<ns>/<svc>``, ``service.k8s.aws/resource=...``;
- EBS CSI driver (a PVC): an unattached gp3 volume tagged ``ebs.csi.aws.com/cluster=true``,
  ``CSIVolumeName``, ``kubernetes.io/created-for/pvc/*`` and ``Cluster=<name>``
  (the add-on's ``extraVolumeTags``, constructs/addons.py);
- VPC CNI: an ``available`` interface in a private subnet with the cluster security group, tagged
  ``cluster.k8s.amazonaws.com/name=<name>`` and ``node.k8s.amazonaws.com/instance_id``; and one with
  only ``node.k8s.amazonaws.com/instance_id`` (and ``eks:eni:owner=amazon-vpc-cni``), as a CNI without
  ``CLUSTER_NAME`` tags them, for a terminated node of the cluster (tagged ``kubernetes.io/cluster/<name>=owned``).

Look-alikes of cluster ``other-cluster`` in the default VPC: a classic ELB and its ``k8s-elb-*``
group (the ELB also carries ``kubernetes.io/cluster/<name>=shared``: shared is not owned), a
target group, a PVC volume and a leaked interface.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tests.emulator.server import Emulator

OTHER = "other-cluster"
LISTENER = [{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}]


@dataclass
class Leftovers:
    """Ids by kind: ``swept`` must be gone after the destroy, ``kept`` and ``lookalikes`` still there."""

    cluster: str
    swept: dict[str, list[str]] = field(default_factory=dict)
    kept: dict[str, list[str]] = field(default_factory=dict)
    lookalikes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: dict[str, list[str]], kind: str, ident: str) -> str:
        where.setdefault(kind, []).append(ident)
        return ident


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _hash() -> str:
    return uuid.uuid4().hex[:10]


def create_leftovers(emu: Emulator, cluster: str) -> Leftovers:
    """Create what the controllers of running cluster ``cluster`` leave, plus the look-alikes."""
    ec2, elb, elbv2 = emu.client("ec2"), emu.client("elb"), emu.client("elbv2")
    found = emu.client("eks").describe_cluster(name=cluster)["cluster"]["resourcesVpcConfig"]
    vpc, cluster_sg = found["vpcId"], found["clusterSecurityGroupId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    public = [s["SubnetId"] for s in subnets if any(t["Key"] == "kubernetes.io/role/elb" for t in s.get("Tags", []))]
    private = [s["SubnetId"] for s in subnets
               if any(t["Key"] == "kubernetes.io/role/internal-elb" for t in s.get("Tags", []))]
    assert public and private, f"no tagged public/private subnets in {vpc}: {subnets}"
    out = Leftovers(cluster)

    def group(name: str, vpc_id: str, tags: dict[str, str], where: dict) -> str:
        made = ec2.create_security_group(GroupName=name, Description=f"Security group for Kubernetes ELB {name}",
                                         VpcId=vpc_id, TagSpecifications=[
                                             {"ResourceType": "security-group", "Tags": _tags(tags)}])["GroupId"]
        return out.add(where, "security_groups", made)

    def allow_from(source: str, port: int) -> None:
        ec2.authorize_security_group_ingress(GroupId=cluster_sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": source}]}])

    # ---- EKS cloud controller: Service default/web of type LoadBalancer
    owned = {f"kubernetes.io/cluster/{cluster}": "owned", "kubernetes.io/service-name": "default/web"}
    name = "a" + uuid.uuid4().hex[:31]
    sg = group(f"k8s-elb-{name}", vpc, owned, out.swept)
    elb.create_load_balancer(LoadBalancerName=name, Listeners=LISTENER, Subnets=public, SecurityGroups=[sg],
                             Tags=_tags(owned))
    out.add(out.swept, "classic_load_balancers", name)
    allow_from(sg, 30080)

    # ---- AWS Load Balancer Controller: Service default/api as an NLB
    stack = {"elbv2.k8s.aws/cluster": cluster, "service.k8s.aws/stack": "default/api"}
    hashed = f"k8s-default-api-{_hash()}"
    frontend = group(hashed, vpc, {**stack, "service.k8s.aws/resource": "ManagedLBSecurityGroup"}, out.swept)
    backend = group(f"k8s-traffic-{cluster[:8]}-{_hash()}", vpc,
                    {"elbv2.k8s.aws/cluster": cluster, "elbv2.k8s.aws/resource": "backend-sg"}, out.swept)
    nlb = elbv2.create_load_balancer(Name=hashed, Type="network", Scheme="internet-facing", Subnets=public,
                                     SecurityGroups=[frontend, backend],
                                     Tags=_tags({**stack, "service.k8s.aws/resource": "LoadBalancer"})
                                     )["LoadBalancers"][0]["LoadBalancerArn"]
    out.add(out.swept, "load_balancers", nlb)
    tg = elbv2.create_target_group(Name=f"k8s-default-api-{_hash()}", Protocol="TCP", Port=30081, VpcId=vpc,
                                   TargetType="instance",
                                   Tags=_tags({**stack, "service.k8s.aws/resource": "default/api:80"})
                                   )["TargetGroups"][0]["TargetGroupArn"]
    out.add(out.swept, "target_groups", tg)
    elbv2.create_listener(LoadBalancerArn=nlb, Protocol="TCP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    allow_from(backend, 30081)

    # ---- EBS CSI driver: a PVC's volume, detached now that its node is gone (kept by the destroy)
    pv = f"pvc-{uuid.uuid4()}"
    csi = {"ebs.csi.aws.com/cluster": "true", "CSIVolumeName": pv, "kubernetes.io/created-for/pv/name": pv,
           "kubernetes.io/created-for/pvc/name": "data-db-0", "kubernetes.io/created-for/pvc/namespace": "default"}
    zone = subnets[0]["AvailabilityZone"]
    volume = ec2.create_volume(AvailabilityZone=zone, Size=10, VolumeType="gp3", Encrypted=True, TagSpecifications=[
        {"ResourceType": "volume", "Tags": _tags({**csi, "Cluster": cluster})}])["VolumeId"]
    out.add(out.kept, "volumes", volume)

    # ---- VPC CNI: a leaked interface (status available) with the nodes' security group
    eni = ec2.create_network_interface(
        SubnetId=private[0], Groups=[cluster_sg], Description="aws-K8S-i-0a1b2c3d4e5f60718",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": _tags({
            "cluster.k8s.amazonaws.com/name": cluster, "node.k8s.amazonaws.com/instance_id": "i-0a1b2c3d4e5f60718"})}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    out.add(out.swept, "network_interfaces", eni)
    # ... and one without the cluster tag (a CNI without CLUSTER_NAME writes none), made for one of this
    # cluster's nodes, terminated since (EC2 lists it about an hour after). The node runs in the default
    # VPC: moto keeps a terminated instance's primary interface (AWS deletes it), which would hold the
    # subnet; the sweep looks the node up by its tags only.
    default_subnet_id = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0][
        "SubnetId"]
    node = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="m6i.large",
                             SubnetId=default_subnet_id, TagSpecifications=[{"ResourceType": "instance", "Tags": _tags({
                                 f"kubernetes.io/cluster/{cluster}": "owned", "karpenter.sh/nodepool": "stateless"})}],
                             )["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[node])
    untagged = ec2.create_network_interface(
        SubnetId=private[0], Groups=[cluster_sg], Description=f"aws-K8S-{node}",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": _tags({
            "node.k8s.amazonaws.com/instance_id": node, "eks:eni:owner": "amazon-vpc-cni"})}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    out.add(out.swept, "network_interfaces", untagged)

    # ---- look-alikes of another cluster, in the default VPC
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    default_subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"][0]
    theirs = {f"kubernetes.io/cluster/{OTHER}": "owned", "kubernetes.io/service-name": "default/web"}
    other = "a" + uuid.uuid4().hex[:31]
    other_sg = group(f"k8s-elb-{other}", default_vpc, theirs, out.lookalikes)
    elb.create_load_balancer(LoadBalancerName=other, Listeners=LISTENER, Subnets=[default_subnet["SubnetId"]],
                             SecurityGroups=[other_sg],
                             Tags=_tags({**theirs, f"kubernetes.io/cluster/{cluster}": "shared"}))
    out.add(out.lookalikes, "classic_load_balancers", other)
    other_tg = elbv2.create_target_group(Name=f"k8s-default-api-{_hash()}", Protocol="TCP", Port=30081,
                                         VpcId=default_vpc, Tags=_tags({"elbv2.k8s.aws/cluster": OTHER,
                                                                        "service.k8s.aws/stack": "default/api"})
                                         )["TargetGroups"][0]["TargetGroupArn"]
    out.add(out.lookalikes, "target_groups", other_tg)
    other_volume = ec2.create_volume(AvailabilityZone=zone, Size=10, TagSpecifications=[
        {"ResourceType": "volume", "Tags": _tags({"ebs.csi.aws.com/cluster": "true", "Cluster": OTHER})}])["VolumeId"]
    out.add(out.lookalikes, "volumes", other_volume)
    other_eni = ec2.create_network_interface(SubnetId=default_subnet["SubnetId"], TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": _tags({"cluster.k8s.amazonaws.com/name": OTHER})}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    out.add(out.lookalikes, "network_interfaces", other_eni)
    return out


def present(emu: Emulator) -> dict[str, set[str]]:
    """Ids of every kind ``create_leftovers`` makes that the emulator holds now."""
    ec2, elb, elbv2 = emu.client("ec2"), emu.client("elb"), emu.client("elbv2")
    return {
        "classic_load_balancers": {lb["LoadBalancerName"] for lb in
                                   elb.describe_load_balancers()["LoadBalancerDescriptions"]},
        "load_balancers": {lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]},
        "target_groups": {tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]},
        "security_groups": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]},
        "volumes": {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]},
        "network_interfaces": {n["NetworkInterfaceId"] for n in
                               ec2.describe_network_interfaces()["NetworkInterfaces"]},
    }


def assert_swept(emu: Emulator, leftovers: Leftovers, destroy_output: str) -> None:
    """After the destroy: every leftover of the cluster is gone but the kept volumes, whose ids the
    destroy output names; every look-alike is still there."""
    now = present(emu)
    left = {kind: sorted(set(ids) & now[kind]) for kind, ids in leftovers.swept.items()}
    assert not any(left.values()), f"the destroy left resources tagged for {leftovers.cluster}: {left}"
    for where, what in ((leftovers.kept, "kept PVC volumes"), (leftovers.lookalikes, "another cluster's look-alikes")):
        gone = {kind: sorted(set(ids) - now[kind]) for kind, ids in where.items()}
        assert not any(gone.values()), f"the destroy deleted {what}: {gone}"
    for volume in leftovers.kept.get("volumes", []):
        assert volume in destroy_output, f"the destroy output does not list kept volume {volume}:\n{destroy_output[-3000:]}"
