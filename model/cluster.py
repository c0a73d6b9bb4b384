"""The cluster layer's config: Kubernetes version and support policy, API access, the controller
node group, and who administers the cluster; plus the controller nodes' label and taint."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from model import aws, versions
from model.base import Cidr, Model, RetentionDays, hint

MINOR_VERSION_PATTERN = hint(r"^1\.\d{2}$", 'write a Kubernetes minor version in quotes, such as "1.36" (no patch number)')
INSTANCE_TYPE_PATTERN = hint(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", "use an EC2 instance type such as m6i.large")
ADDON_VERSION_PATTERN = hint(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$", "use an EKS add-on version such as v1.22.4-eksbuild.3")
PRINCIPAL_ARN_PATTERN = hint(
    r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$",
    "use the ARN of an IAM role or user, e.g. arn:aws:iam::123456789012:role/platform-admins "
    "(for an SSO or assumed role, the role's ARN, not the arn:aws:sts session ARN)",
)

CONTROLLER_LABEL = {"karpenter.sh/controller": "true"}
CONTROLLER_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}
"""The controller node group's taint as EKS spells it (Kubernetes spells the effect NoSchedule)."""
CONTROLLER_TOLERATION = {"key": CONTROLLER_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
"""What a pod placed on the controller nodes tolerates (Karpenter, CoreDNS, the EBS CSI controller)."""

ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"

PRIVATE_ENDPOINT_WARNING = (
    "cluster.endpoint_public_access is false with the cloud backend: Terraform Cloud's remote runners are outside "
    "every VPC, so from the apply that turns the public endpoint off, every plan fails on every Kubernetes and Helm "
    "resource unless the workspace runs on an agent pool (Execution mode Agent) whose agents reach the private "
    "endpoint: agents in the VPC or in a network routed to it, with their CIDR in cluster.private_access_cidrs "
    "(README: Terraform Cloud)")
"""Said at synth (stacks/config.py ``support_warning``) and at every plan (a ``check`` block, constructs/cluster.py)."""


def cidr_key(cidr: str) -> str:
    """A logical-id key for a CIDR (``10-20-0-0-16``): keyed by the network, never by its list position."""
    return cidr.replace(".", "-").replace("/", "-")

# What the platform runs on the controller nodes besides Karpenter, as (pods, CPU millicores, memory
# MiB) requests per pod: CoreDNS (EKS add-on: 2 replicas, 100m / 70Mi); the EBS CSI controller (2
# replicas; the driver and its four sidecars at 10m / 40Mi each, aws-ebs-csi-driver chart values);
# and the DaemonSets on every node: aws-node (25m), kube-proxy (100m), ebs-csi-node (3 containers at
# 10m / 40Mi).
SPREAD_PODS = {"coredns": (2, 100, 70), "ebs-csi-controller": (2, 50, 200)}
DAEMONSET_PODS = {"aws-node": (25, 0), "kube-proxy": (100, 0), "ebs-csi-node": (30, 120)}
VM_MEMORY_OVERHEAD = 0.075
"""The share of an instance's memory the kubelet never sees (Karpenter's vmMemoryOverheadPercent)."""


def _reserved(vcpus: int, max_pods: int) -> tuple[int, int]:
    """The AL2023 EKS AMI's kube-reserved CPU (6% of the first core, 1% of the second, 0.5% of the next
    two, 0.25% of the rest) and memory (255 MiB + 11 MiB per pod) plus the 100 MiB hard eviction
    threshold, as (millicores, MiB)."""
    shares = [60, 10, 5, 5] + [2.5] * max(0, vcpus - 4)
    return int(sum(shares[:vcpus])), 255 + 11 * max_pods + 100


def controller_load(cluster: ClusterConfig, karpenter_cpu: int, karpenter_memory: int) -> tuple[int, int, int]:
    """(pods, CPU millicores, memory MiB) on the fullest controller node with the group at
    ``node_min_size``: one Karpenter pod (its chart's anti-affinity puts one per node), the spread
    pods of CoreDNS and the EBS CSI controller shared out over the nodes, and every DaemonSet pod."""
    nodes = cluster.node_min_size
    pods, cpu, memory = 1, karpenter_cpu, karpenter_memory
    for replicas, pod_cpu, pod_memory in SPREAD_PODS.values():
        here = -(-replicas // nodes)
        pods, cpu, memory = pods + here, cpu + here * pod_cpu, memory + here * pod_memory
    daemonsets = dict(DAEMONSET_PODS)
    if cluster.pod_credentials == "pod_identity":  # the agent's DaemonSet: a pod on every node (requests not counted)
        daemonsets["eks-pod-identity-agent"] = (0, 0)
    for pod_cpu, pod_memory in daemonsets.values():
        pods, cpu, memory = pods + 1, cpu + pod_cpu, memory + pod_memory
    return pods, cpu, memory


def node_room(instance_type: str) -> tuple[int, int, int] | None:
    """(pods, allocatable CPU millicores, allocatable memory MiB) of one node of ``instance_type``, or
    None where model/aws_data.json has no sizes for it."""
    size = aws.sizes().get(instance_type)
    if size is None:
        return None
    vcpus, memory, max_pods = size
    reserved_cpu, reserved_memory = _reserved(vcpus, max_pods)
    return max_pods, vcpus * 1000 - reserved_cpu, int(memory * (1 - VM_MEMORY_OVERHEAD)) - reserved_memory


def controller_fit_problem(cluster: ClusterConfig, karpenter_cpu: int, karpenter_memory: int) -> str | None:
    """Why ``cluster.node_instance_type`` cannot hold what the platform puts on a controller node (the
    node group would come up and Karpenter never schedule), naming the smallest types that can; or None."""
    room = node_room(cluster.node_instance_type)
    if room is None:
        return None
    need = controller_load(cluster, karpenter_cpu, karpenter_memory)
    if all(n <= r for n, r in zip(need, room)):
        return None

    def fits(t: str) -> bool:
        got = node_room(t)
        return got is not None and all(n <= r for n, r in zip(need, got))

    arch = aws.architecture(aws.family(cluster.node_instance_type))
    by_size = sorted((t for t in aws.sizes() if aws.architecture(aws.family(t)) == arch and fits(t)),
                     key=lambda t: (aws.sizes()[t][1], aws.sizes()[t][0], t))
    family = aws.family(cluster.node_instance_type)
    same = next((t for t in by_size if aws.family(t) == family), None)
    others = [t for t in by_size if aws.family(t) in ("m6i", "m7i", "m7g", "t3", "t4g") and t != same][:2]
    choices = [f"{same} (the smallest {family} that fits)"] * bool(same) + others
    words = (" pods", "m CPU", " MiB of memory")
    short = [f"{n}{w} (a node holds {r})" for n, r, w in zip(need, room, words) if n > r]
    return (f"cluster.node_instance_type {cluster.node_instance_type} is too small for the controller nodes: with "
            f"node_min_size {cluster.node_min_size} one node carries Karpenter, CoreDNS, the EBS CSI controller and "
            f"the DaemonSets, which need {', '.join(short)}, so Karpenter would never be scheduled and launch no "
            f"node; use {' or '.join(choices) or 'a larger type'}")


def admin_key(arn: str) -> str:
    """A stable logical-id key for an admin principal: account, kind and name (``123456789012-role-ops``).
    Keyed by the principal, never by its position in ``admin_principal_arns``: adding or removing one
    creates or deletes that principal's access entry only, and reordering the list changes nothing."""
    account, resource = arn.split(":", 5)[4:]
    kind, _, path = resource.partition("/")
    return "".join(c if c.isalnum() or c == "-" else "-" for c in f"{account}-{kind}-{path.rsplit('/', 1)[-1]}")


NON_PUBLIC = tuple(ipaddress.IPv4Network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"))


def _public_cidrs(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """EKS refuses private, shared, loopback and link-local blocks in publicAccessCidrs (the public
    endpoint is reached from the internet; private callers use the private endpoint, which is on)."""
    for cidr in cidrs:
        net = ipaddress.IPv4Network(cidr)
        inside = next((n for n in NON_PUBLIC if net.subnet_of(n)), None)
        if inside:
            raise ValueError(f"{cidr} is inside {inside}, not a public address block: EKS refuses it for the public "
                             "endpoint (the private endpoint already serves the VPC); list the public addresses "
                             "callers come from")
    return cidrs


class ClusterConfig(Model):
    """EKS control plane and the small managed node group that hosts Karpenter and CoreDNS."""

    version: Annotated[str, StringConstraints(pattern=MINOR_VERSION_PATTERN)] = Field(
        versions.DEFAULT_KUBERNETES,
        description="Kubernetes minor version, e.g. '1.36' (quote it in YAML). Move one minor version at a time.")
    support_type: Literal["EXTENDED", "STANDARD"] = Field(
        "EXTENDED",
        description="EKS upgrade policy. EXTENDED: after standard support the cluster stays on its version "
        "(extended-support price) until you upgrade it. STANDARD: AWS upgrades the control plane itself at the end "
        "of standard support, without the node group, add-ons or Karpenter.")
    allow_past_end_of_support: bool = Field(
        False,
        description="Plan a version past the end of EKS extended support. Only for an existing cluster that AWS has "
        "not yet auto-upgraded, while you step it up; EKS creates no new cluster at such a version.")
    endpoint_public_access: bool = Field(
        True,
        description="Expose the API endpoint publicly (restricted by public_access_cidrs). false: the API is "
        "reachable only through the VPC, so every later plan must run where the private endpoint is reachable (a "
        "Terraform Cloud agent or CI runner in the VPC or a network routed to it, a VPN; list its CIDR in "
        "private_access_cidrs); Terraform Cloud's own runners are outside every VPC.")
    public_access_cidrs: tuple[Cidr, ...] = Field(
        ("0.0.0.0/0",), min_length=1, description="CIDRs allowed to reach the public API endpoint."
    )
    private_access_cidrs: tuple[Cidr, ...] = Field(
        (),
        description="Networks outside the VPC's own nodes that reach the private API endpoint (a peered or "
        "transit-gateway network, a VPN, the subnet of a Terraform Cloud agent or CI runner): one HTTPS (443) ingress "
        "rule each on the cluster security group. Adding or removing one changes only its rule.")
    pod_credentials: Literal["irsa", "pod_identity"] = Field(
        "irsa",
        description="How the platform's own controllers (Karpenter, the EBS CSI driver) get AWS credentials. irsa: "
        "a role trusting the cluster's OIDC provider, named in the service account's annotation. pod_identity: EKS "
        "Pod Identity (the eks-pod-identity-agent add-on, an association per service account, a role trusting "
        "pods.eks.amazonaws.com). Either way the OIDC provider stays, for your own IRSA roles; a switch restarts "
        "the Karpenter and EBS CSI controllers and replaces no node.")
    admin_principal_arns: tuple[Annotated[str, StringConstraints(pattern=PRINCIPAL_ARN_PATTERN)], ...] = Field(
        (),
        description="IAM roles/users given cluster-admin (an EKS access entry with AmazonEKSClusterAdminPolicy). "
        "Whoever created the cluster is admin already; list the operators and CI roles here (the roles state-bootstrap makes for deployer: get theirs by themselves).")
    log_retention_days: RetentionDays = Field(365, description="Retention of /aws/eks/<name>/cluster control-plane logs, in days (audit logs: keep a year).")
    node_instance_type: Annotated[str, StringConstraints(pattern=INSTANCE_TYPE_PATTERN)] = Field(
        "m6i.large", description="Instance type of the controller node group (Karpenter + CoreDNS)."
    )
    node_desired_size: int = Field(2, ge=1, description="Controller node group desired size.")
    node_min_size: int = Field(2, ge=1, description="Controller node group minimum size.")
    node_max_size: int = Field(3, ge=1, description="Controller node group maximum size.")
    node_disk_size_gb: int = Field(50, ge=20, le=1000, description="Root volume of controller nodes, GiB.")
    addon_versions: dict[Literal["vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "eks-pod-identity-agent"],
                         Annotated[str, StringConstraints(pattern=ADDON_VERSION_PATTERN)]] = Field(
        default_factory=dict,
        description="EKS add-on versions that replace the pinned ones for cluster.version (model/versions.py), "
        "e.g. {vpc-cni: v1.22.4-eksbuild.3}. Add-ons never move unless this, cluster.version or the platform's pins "
        "change; move vpc-cni one minor version at a time.")

    @property
    def node_ami_type(self) -> str:
        """AL2023 AMI type of the controller nodes: ARM for Graviton families (m7g, c6gn, t4g, a1...), by the
        same rule the NodePools' architectures use (``model.aws.architecture``)."""
        arm = aws.architecture(aws.family(self.node_instance_type)) == "arm64"
        return "AL2023_ARM_64_STANDARD" if arm else "AL2023_x86_64_STANDARD"

    @field_validator("public_access_cidrs")
    @classmethod
    def _public(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _public_cidrs(v)

    @field_validator("private_access_cidrs")
    @classmethod
    def _unique_cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        keys = [str(ipaddress.IPv4Network(c)) for c in v]
        if len(set(keys)) != len(keys):
            raise ValueError("lists the same network twice; keep one")
        return v

    @field_validator("node_instance_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in aws.instance_types():
            same = [t for t in aws.instance_types() if aws.family(t) == aws.family(v)]
            near = aws.nearest(v, same) or aws.nearest(v, aws.instance_types())
            use = (f"the nearest names are {', '.join(near[:-1])} and {near[-1]}" if len(near) > 1 else
                   f"the nearest name is {near[0]}" if near else "use one such as m6i.large")
            raise ValueError(f"{v} is not an EC2 instance type; {use} (or, {aws.newer_hint()})")
        return v

    @field_validator("admin_principal_arns")
    @classmethod
    def _unique_admins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for arn in v:
            resource = arn.split(":", 5)[5]
            name = resource.rsplit("/", 1)[-1]
            if len(name) > 64 or len(resource.partition("/")[2]) - len(name) > 512:
                raise ValueError(f"{arn}: IAM role and user names end at 64 characters and paths at 512; "
                                 "check the ARN")
        if len(set(v)) != len(v):
            raise ValueError("lists the same ARN twice; keep one")
        keys: dict[str, str] = {}
        for arn in v:
            other = keys.setdefault(admin_key(arn), arn)
            if other != arn:
                raise ValueError(f"{other} and {arn} differ only in characters other than letters, digits and '-' "
                                 "in the same account and kind, so their access entries would get the same id; "
                                 "list one of them")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> ClusterConfig:
        if self.node_min_size > self.node_max_size:
            raise ValueError(
                f"node_min_size {self.node_min_size} > node_max_size {self.node_max_size}; raise node_max_size or lower node_min_size"
            )
        if not self.node_min_size <= self.node_desired_size <= self.node_max_size:
            raise ValueError(
                f"node_desired_size {self.node_desired_size} is outside node_min_size..node_max_size "
                f"({self.node_min_size}..{self.node_max_size}); set it within that range"
            )
        return self
