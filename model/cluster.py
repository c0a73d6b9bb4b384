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

CONTROLLER_MAX_UNAVAILABLE = 1
"""The controller node group's ``update_config.max_unavailable``: one node at a time is drained during an
update (the preflight counts the update's surge from it, model/preflight.py)."""


def cidr_key(cidr: str) -> str:
    """A logical-id key for a CIDR (``10-20-0-0-16``): keyed by the network, never by its list position."""
    return cidr.replace(".", "-").replace("/", "-")


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
            same = sorted(t for t in aws.instance_types() if aws.family(t) == aws.family(v))
            sizes = f" ({aws.family(v)} has {', '.join(same[:6])}{', ...' if len(same) > 6 else ''})" if same else ""
            raise ValueError(f"{v} is not an EC2 instance type{sizes}; use one such as m6i.large, or "
                             f"{aws.newer_hint()}")
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
