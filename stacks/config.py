"""Typed, validated configuration: one frozen pydantic model per layer, composed into StackConfig.

Each environment is one YAML file in ``stacks/environments/`` (``dev.yaml``, ``prod.yaml``, ...).
Every field has a safe default where one exists; unknown keys are errors; cross-field rules
(subnets inside the VPC, replicas <= controller nodes, compatible Kubernetes/Karpenter versions)
live in the models. ``load_config`` turns any validation problem into a ``ConfigError`` whose
message is one line per problem: file, field, bad value, fix.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

ENVIRONMENTS_DIR = Path(__file__).resolve().parent / "environments"
SCHEMA_FILE = ENVIRONMENTS_DIR / "schema.json"


class ConfigError(Exception):
    """A configuration file is unusable. ``str()`` is the user-facing message (no traceback)."""


# ----------------------------------------------------------------------------- shared types

_NAME_RE = r"^[a-z][a-z0-9-]{0,37}[a-z0-9]$"
Name = Annotated[str, StringConstraints(pattern=_NAME_RE)]
"""A cluster name: lower-case letters, digits and '-', 2-39 chars (it prefixes IAM role names)."""

Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
MinorVersion = Annotated[str, StringConstraints(pattern=r"^1\.\d{2}$")]
SemVer = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
K8sLabelKey = Annotated[str, StringConstraints(pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")]


def _cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network in CIDR notation ({exc}); e.g. 10.0.0.0/16") from None
    return str(net)


Cidr = Annotated[str, AfterValidator(_cidr)]


_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _check_retention(v: int) -> int:
    if v not in _RETENTION_DAYS:
        raise ValueError(f"CloudWatch accepts only {', '.join(map(str, _RETENTION_DAYS))} days")
    return v


RetentionDays = Annotated[int, AfterValidator(_check_retention)]
"""CloudWatch Logs retention in days: one of the values the service accepts."""


class _Model(BaseModel):
    """Frozen; unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


# ----------------------------------------------------------------------------- network


class NetworkConfig(_Model):
    """VPC, subnets and NAT. Subnet CIDRs are derived from ``vpc_cidr`` (cidrsubnet-style)."""

    vpc_cidr: Cidr = Field("10.0.0.0/16", description="VPC IPv4 CIDR block (/16 to /24).")
    az_count: int = Field(3, ge=2, le=6, description="Number of AZs used when availability_zones is empty; at least 2.")
    availability_zones: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")], ...] = Field(
        (),
        description="Explicit AZ names; empty = the region's first az_count zones (<region>a, b, c, ...).",
    )
    private_subnet_newbits: int = Field(
        3, ge=1, le=12, description="Bits added to the VPC prefix for each private (node) subnet: /16 + 3 = /19."
    )
    public_subnet_newbits: int = Field(
        8, ge=1, le=12, description="Bits added to the VPC prefix for each public (load balancer) subnet: /16 + 8 = /24."
    )
    single_nat_gateway: bool = Field(
        False, description="One shared NAT gateway instead of one per AZ (cheaper, not HA: an AZ outage cuts egress)."
    )
    flow_log_retention_days: RetentionDays = Field(365, description="CloudWatch retention of the VPC flow logs, in days.")

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, v: str) -> str:
        prefix = ipaddress.IPv4Network(v).prefixlen
        if not 16 <= prefix <= 24:
            raise ValueError("VPC prefix must be between /16 and /24 (AWS limit); e.g. 10.0.0.0/16")
        return v

    @field_validator("availability_zones")
    @classmethod
    def _unique_azs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if v and len(v) < 2:
            raise ValueError("EKS needs subnets in at least 2 AZs; list 2 or more zones")
        if len(set(v)) != len(v):
            raise ValueError("AZ names must be unique")
        return v

    @model_validator(mode="after")
    def _subnets_fit(self) -> NetworkConfig:
        self.subnet_plan("placeholder-region")  # raises ValueError when the subnets do not fit
        return self

    def zones(self, region: str) -> tuple[str, ...]:
        """The AZ names in use: explicit ones, or the region's first ``az_count`` zones."""
        return self.availability_zones or tuple(f"{region}{chr(ord('a') + i)}" for i in range(self.az_count))

    def subnet_plan(self, region: str) -> dict[str, dict[str, str]]:
        """``{az: {"private": cidr, "public": cidr}}``: private blocks first (largest), then public,
        each at the next aligned free block, like Terraform's ``cidrsubnet``. Raises ValueError when
        they do not fit inside ``vpc_cidr``."""
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        zones = self.zones(region)
        cursor = int(vpc.network_address)
        plan: dict[str, dict[str, str]] = {az: {} for az in zones}
        for kind, newbits in (("private", self.private_subnet_newbits), ("public", self.public_subnet_newbits)):
            prefix = vpc.prefixlen + newbits
            if prefix > 28:
                raise ValueError(
                    f"{kind}_subnet_newbits={newbits} makes /{prefix} subnets; AWS subnets are /16 to /28, lower it"
                )
            size = 2 ** (32 - prefix)
            for az in zones:
                cursor = -(-cursor // size) * size  # align up to the block size
                net = ipaddress.IPv4Network((cursor, prefix))
                if not net.subnet_of(vpc):
                    raise ValueError(
                        f"{len(zones)} private /{vpc.prefixlen + self.private_subnet_newbits} and "
                        f"{len(zones)} public /{vpc.prefixlen + self.public_subnet_newbits} subnets do not fit in "
                        f"{self.vpc_cidr}; raise private_subnet_newbits/public_subnet_newbits (smaller subnets), use fewer AZs or a larger vpc_cidr"
                    )
                plan[az][kind] = str(net)
                cursor += size
        return plan


# ----------------------------------------------------------------------------- cluster


class ClusterConfig(_Model):
    """EKS control plane and the small managed node group that hosts Karpenter and CoreDNS."""

    version: MinorVersion = Field("1.31", description="Kubernetes minor version, e.g. '1.31' (quote it in YAML).")
    endpoint_public_access: bool = Field(
        True, description="Expose the API endpoint publicly (restricted by public_access_cidrs); the deployer and Terraform Cloud need it."
    )
    public_access_cidrs: tuple[Cidr, ...] = Field(
        ("0.0.0.0/0",), min_length=1, description="CIDRs allowed to reach the public API endpoint."
    )
    log_retention_days: RetentionDays = Field(365, description="Retention of /aws/eks/<name>/cluster control-plane logs, in days (audit logs: keep a year).")
    node_instance_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = Field(
        "m6i.large", description="Instance type of the controller node group (Karpenter + CoreDNS)."
    )
    node_desired_size: int = Field(2, ge=1, description="Controller node group desired size.")
    node_min_size: int = Field(2, ge=1, description="Controller node group minimum size.")
    node_max_size: int = Field(3, ge=1, description="Controller node group maximum size.")
    node_disk_size_gb: int = Field(50, ge=20, le=1000, description="Root volume of controller nodes, GiB.")

    @property
    def node_ami_type(self) -> str:
        """AL2023 AMI type of the controller nodes: ARM for Graviton families (m7g, c6gn, t4g...)."""
        family = self.node_instance_type.split(".")[0]
        return "AL2023_ARM_64_STANDARD" if re.match(r"^[a-z]+\d+g", family) else "AL2023_x86_64_STANDARD"

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


# ----------------------------------------------------------------------------- karpenter

# Karpenter minor -> highest Kubernetes minor it starts on (its MaxK8sVersion check).
KARPENTER_MAX_K8S: dict[tuple[int, int], tuple[int, int]] = {
    (1, 0): (1, 31),
    (1, 1): (1, 31),
    (1, 2): (1, 32),
    (1, 3): (1, 32),
    (1, 4): (1, 32),
    (1, 5): (1, 33),
    (1, 6): (1, 34),
    (1, 7): (1, 34),
    (1, 8): (1, 34),
}


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def first_karpenter_for(k8s: tuple[int, int]) -> tuple[int, int] | None:
    """The oldest Karpenter minor that supports Kubernetes ``k8s``, or None."""
    fits = [kp for kp, top in sorted(KARPENTER_MAX_K8S.items()) if top >= k8s]
    return fits[0] if fits else None


class NodePoolConfig(_Model):
    """One Karpenter NodePool (karpenter.sh/v1) on the shared EC2NodeClass."""

    capacity_types: tuple[Literal["on-demand", "spot"], ...] = Field(
        ("on-demand",), min_length=1, description="karpenter.sh/capacity-type values; Karpenter prefers spot when both are allowed.")
    instance_categories: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")], ...] = Field(
        (), description="karpenter.k8s.aws/instance-category values, e.g. [c, m, r]."
    )
    instance_families: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")], ...] = Field(
        (), description="karpenter.k8s.aws/instance-family values, e.g. [g5, g6]."
    )
    min_generation: int | None = Field(5, ge=1, description="Lowest karpenter.k8s.aws/instance-generation (exclusive of older).")
    architectures: tuple[Literal["amd64", "arm64"], ...] = Field(("amd64",), min_length=1, description="kubernetes.io/arch values.")
    cpu_limit: int = Field(100, ge=1, description="Total vCPU the pool may provision.")
    memory_limit_gi: int = Field(400, ge=1, description="Total memory (GiB) the pool may provision.")
    labels: dict[K8sLabelKey, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict, description="Labels on the pool's nodes (workloads select the pool with them).")
    taints: tuple[Annotated[str, StringConstraints(pattern=r"^[^=:\s]+(=[^:\s]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")], ...] = Field(
        (), description="Taints as key=value:Effect, e.g. nvidia.com/gpu=true:NoSchedule."
    )
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        "WhenEmptyOrUnderutilized", description="WhenEmpty never moves running pods (databases); the other packs nodes tighter.")
    consolidate_after: Annotated[str, StringConstraints(pattern=r"^(([0-9]+(s|m|h))+|Never)$")] = Field(
        "1m", description="How long a node must be consolidatable before Karpenter acts (Go duration or Never).")
    expire_after: Annotated[str, StringConstraints(pattern=r"^(([0-9]+(s|m|h))+|Never)$")] = Field(
        "720h", description="Node lifetime before replacement (picks up new AMIs/patches), or Never.")
    disruption_budget_nodes: Annotated[str, StringConstraints(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$")] = Field(
        "10%", description="How many nodes (count or %) may be disrupted at once."
    )
    weight: int | None = Field(None, ge=1, le=100, description="Priority among pools that fit a pod (higher first).")

    @model_validator(mode="after")
    def _selects_something(self) -> NodePoolConfig:
        if not self.instance_categories and not self.instance_families:
            raise ValueError("set instance_categories or instance_families so the pool has a bounded instance set")
        return self


def _default_pools() -> dict[str, NodePoolConfig]:
    return {
        "stateful": NodePoolConfig(
            capacity_types=("on-demand",),
            instance_categories=("m", "r"),
            labels={"workload-type": "stateful"},
            consolidation_policy="WhenEmpty",
            consolidate_after="10m",
            expire_after="Never",
            disruption_budget_nodes="1",
            weight=None,
        ),
        "stateless": NodePoolConfig(
            capacity_types=("spot", "on-demand"),
            instance_categories=("c", "m"),
            labels={"workload-type": "stateless"},
            consolidation_policy="WhenEmptyOrUnderutilized",
            consolidate_after="1m",
            expire_after="720h",
            disruption_budget_nodes="10%",
        ),
        "gpu": NodePoolConfig(
            capacity_types=("on-demand",),
            instance_families=("g5", "g6"),
            min_generation=None,
            cpu_limit=64,
            memory_limit_gi=256,
            labels={"workload-type": "gpu", "nvidia.com/gpu.present": "true"},
            taints=("nvidia.com/gpu=true:NoSchedule",),
            consolidation_policy="WhenEmpty",
            consolidate_after="5m",
            expire_after="720h",
            disruption_budget_nodes="1",
        ),
    }


class ControllerResources(_Model):
    """CPU and memory of each Karpenter controller pod (requests = limits, as upstream recommends)."""

    cpu: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?m?$")] = Field("1", description="CPU, e.g. 1 or 500m.")
    memory: Annotated[str, StringConstraints(pattern=r"^\d+(Mi|Gi)$")] = Field("1Gi", description="Memory, e.g. 1Gi.")


class KarpenterConfig(_Model):
    """Karpenter controller (Helm), its interruption queue and the NodePools."""

    version: SemVer = Field("1.1.0", description="Karpenter chart and controller version (karpenter-crd uses the same).")
    replicas: int | None = Field(
        None, ge=1, description="Controller replicas; default min(2, cluster.node_min_size). Never above the controller node count."
    )
    ami_alias: Annotated[str, StringConstraints(pattern=r"^al2023@v\d{8}$")] = Field(
        "al2023@v20241213",
        description="EC2NodeClass amiSelectorTerms alias, pinned (not @latest: a new AMI would roll every node unannounced).",
    )
    root_volume_size_gi: int = Field(100, ge=20, le=16384, description="Encrypted gp3 root volume of Karpenter's nodes, GiB.")
    controller_resources: ControllerResources = Field(default_factory=ControllerResources)
    log_level: Literal["debug", "info", "error"] = Field("info", description="Controller log level.")
    helm_timeout_seconds: int = Field(900, ge=60, le=3600, description="How long Helm waits for the releases to be ready.")
    nodepools: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")], NodePoolConfig] = Field(
        default_factory=_default_pools, description="NodePools by name; the default is stateful, stateless and gpu."
    )


# ----------------------------------------------------------------------------- backend / providers


class S3BackendConfig(_Model):
    type: Literal["s3"] = Field("s3", description="Backend kind.")
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = Field(
        description="Existing S3 bucket for Terraform state (see the state bootstrap stack)."
    )
    key: str | None = Field(None, description="State object key; default <environment>/terraform.tfstate.")
    region: Region | None = Field(None, description="Bucket region; default the stack's region.")
    encrypt: bool = Field(True, description="Server-side encryption of the state object.")
    use_lockfile: bool = Field(True, description="Terraform's native S3 lock file (no DynamoDB table).")


class CloudBackendConfig(_Model):
    type: Literal["cloud"] = Field(description="Backend kind.")
    organization: Annotated[str, StringConstraints(min_length=1)] = Field(description="Terraform Cloud organization.")
    workspace: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,90}$")] = Field(
        description="Workspace name (one per environment).")
    hostname: str = Field("app.terraform.io", description="Terraform Cloud / Enterprise host.")


class LocalBackendConfig(_Model):
    type: Literal["local"] = Field(description="Backend kind.")
    path: str | None = Field(None, description="State file; default terraform.<environment>.tfstate in the stack dir.")


Backend = Annotated[S3BackendConfig | CloudBackendConfig | LocalBackendConfig, Field(discriminator="type")]


class KubernetesAuthConfig(_Model):
    """How the Helm and Kubernetes providers authenticate to the new cluster."""

    mode: Literal["exec", "token"] | None = Field(
        None,
        description="exec: `aws eks get-token` at every call (never expires; needs the aws CLI). token: "
        "aws_eks_cluster_auth data source (no CLI, ~15 min lifetime). Default: token for the cloud backend, else exec.",
    )


class EmulatorConfig(_Model):
    """Test-only switch: point the aws provider at a local AWS API emulator (moto).

    The endpoint itself comes from ``AWS_ENDPOINT_URL`` in Terraform's environment."""

    enabled: bool = Field(False, description="Dummy credentials, skip flags and path-style S3 for the emulator. Never in a real environment.")

    def provider_settings(self) -> dict[str, Any]:
        """Extra aws provider arguments: dummy credentials, skipped checks, path-style S3 (or none)."""
        if not self.enabled:
            return {}
        return dict(access_key="testing", secret_key="testing", skip_credentials_validation=True,
                    skip_metadata_api_check="true", skip_region_validation=True, s3_use_path_style=True)


# ----------------------------------------------------------------------------- stack


class StackConfig(_Model):
    """One environment: every layer's config plus identity, region, tags and backend."""

    name: Name = Field(description="Cluster name; also names the VPC, roles, queue and log groups.")
    region: Region = Field("us-west-2", description="AWS region of every resource.")
    tags: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict, description="Organisation tags applied to every resource through the provider's default_tags."
    )
    backend: Backend = Field(description="Where Terraform keeps state: s3 (default), cloud or local.")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    karpenter: KarpenterConfig = Field(default_factory=KarpenterConfig)
    kubernetes_auth: KubernetesAuthConfig = Field(default_factory=KubernetesAuthConfig)
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)

    @model_validator(mode="after")
    def _cross_layer(self) -> StackConfig:
        for az in self.network.availability_zones:
            if not az.startswith(self.region):
                raise ValueError(f"availability zone {az!r} is not in region {self.region}; use {self.region}a, {self.region}b, ...")
        k8s = _minor(self.cluster.version)
        kp = _minor(self.karpenter.version)
        top = KARPENTER_MAX_K8S.get(kp)
        if top is None:
            known = ", ".join(f"{a}.{b}" for a, b in KARPENTER_MAX_K8S)
            raise ValueError(f"karpenter_version {self.karpenter.version} is not in the compatibility table ({known}); pick one of those minors")
        if k8s > top:
            need = first_karpenter_for(k8s)
            fix = f" or karpenter.version to >= {need[0]}.{need[1]}.0" if need else ""
            raise ValueError(
                f"karpenter_version {self.karpenter.version} supports Kubernetes <= {top[0]}.{top[1]}; "
                f"set cluster.version to {top[0]}.{top[1]}{fix}"
            )
        if self.karpenter.replicas is not None and self.karpenter.replicas > self.cluster.node_min_size:
            raise ValueError(
                f"karpenter.replicas {self.karpenter.replicas} > cluster.node_min_size {self.cluster.node_min_size}: "
                "the chart puts one replica per node, so extra replicas never schedule; lower replicas or raise node_min_size"
            )
        return self

    @property
    def karpenter_replicas(self) -> int:
        return self.karpenter.replicas or min(2, self.cluster.node_min_size)

    @property
    def kubernetes_auth_mode(self) -> str:
        if self.kubernetes_auth.mode:
            return self.kubernetes_auth.mode
        return "token" if self.backend.type == "cloud" else "exec"


# ----------------------------------------------------------------------------- EKS support calendar

# Kubernetes minor -> (end of standard support, end of extended support), from AWS's published
# "Amazon EKS Kubernetes release calendar".
EKS_SUPPORT_CALENDAR: dict[str, tuple[_dt.date, _dt.date]] = {
    "1.28": (_dt.date(2024, 11, 26), _dt.date(2025, 11, 26)),
    "1.29": (_dt.date(2025, 3, 23), _dt.date(2026, 3, 23)),
    "1.30": (_dt.date(2025, 7, 23), _dt.date(2026, 7, 23)),
    "1.31": (_dt.date(2025, 11, 26), _dt.date(2026, 11, 26)),
    "1.32": (_dt.date(2026, 3, 23), _dt.date(2027, 3, 23)),
    "1.33": (_dt.date(2026, 7, 29), _dt.date(2027, 7, 29)),
    "1.34": (_dt.date(2026, 12, 2), _dt.date(2027, 12, 2)),
}
EXTENDED_SUPPORT_WARNING_DAYS = 90


def support_warning(cfg: StackConfig, today: _dt.date | None = None) -> str | None:
    """One line when the cluster version is past standard support (or its extended support ends
    soon / has ended), naming the supported Kubernetes + Karpenter pair to move to; else None."""
    today = today or _dt.date.today()
    dates = EKS_SUPPORT_CALENDAR.get(cfg.cluster.version)
    if dates is None:
        return None
    standard_end, extended_end = dates
    if today <= standard_end:
        return None
    supported = sorted(v for v, (std, _) in EKS_SUPPORT_CALENDAR.items() if std >= today)
    target = supported[0] if supported else None
    move = ""
    if target:
        kp = first_karpenter_for(_minor(target))
        move = f"; move to cluster.version {target}" + (f" with karpenter.version >= {kp[0]}.{kp[1]}.0" if kp else "")
    if today >= extended_end:
        state = f"reached the end of EKS extended support on {extended_end}: AWS creates no new {cfg.cluster.version} clusters and auto-upgrades existing ones"
    elif (extended_end - today).days <= EXTENDED_SUPPORT_WARNING_DAYS:
        state = f"ends EKS extended support on {extended_end} (extra per-hour cost until then)"
    else:
        state = f"is in EKS extended support since {standard_end} (extra per-hour cost) until {extended_end}"
    return f"warning: {cfg.name}: Kubernetes {cfg.cluster.version} {state}{move}."


# ----------------------------------------------------------------------------- loading


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in ("s3", "cloud", "local"))]
    return ".".join(parts)


_FORMAT_HINTS = {
    _NAME_RE: "use 2-39 lower-case letters, digits and '-', starting with a letter, e.g. platform-dev",
    r"^1\.\d{2}$": 'use a Kubernetes minor version such as "1.31" (quoted, no patch number)',
    r"^\d+\.\d+\.\d+$": "use a full release number such as 1.1.0 (no leading 'v')",
    r"^[^=:\s]+(=[^:\s]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$": "write key=value:Effect, e.g. nvidia.com/gpu=true:NoSchedule",
}


def _message(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "extra_forbidden":
        return "unknown key; remove it or fix its spelling (see stacks/environments/schema.json)"
    if kind == "missing":
        return "is required; add it"
    if kind == "string_pattern_mismatch":
        return _FORMAT_HINTS.get(ctx["pattern"], f"does not match the expected format {ctx['pattern']}")
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}; raise it"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}; lower it"
    if kind == "union_tag_invalid":
        return f"type must be one of {ctx['expected_tags']}; pick one"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    return err["msg"].removeprefix("Value error, ")


def _format(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = _loc(err["loc"])
        value = err["input"]
        shown = "" if err["type"] == "missing" or isinstance(value, dict) else f" (got {value!r})"
        where = f"{field}{shown}: " if field else ""
        lines.append(f"{path.name}: {where}{_message(err)}")
    return "\n".join(lines)


def load_config(path: str | Path) -> StackConfig:
    """Read and validate one environment file; raise ConfigError with a one-line-per-problem message."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format(path, exc)) from None


def state_buckets(configs: dict[str, StackConfig]) -> dict[str, str]:
    """``{bucket: region}`` of every S3 backend the environments use (cloud/local need none)."""
    buckets: dict[str, str] = {}
    for config in configs.values():
        backend = config.backend
        if backend.type == "s3":
            buckets.setdefault(backend.bucket, backend.region or config.region)
    return buckets


def environment_files(directory: Path = ENVIRONMENTS_DIR) -> dict[str, Path]:
    """``{environment: path}`` for every ``*.yaml`` in the environments folder."""
    return {p.stem: p for p in sorted(directory.glob("*.yaml"))}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an environment file (committed as stacks/environments/schema.json)."""
    schema = StackConfig.model_json_schema(by_alias=True)
    schema["title"] = "EKS + Karpenter platform environment"
    return schema
