"""The fresh-account preflight: its config, and what AWS knows that the checks compare against.

A new AWS account differs from an old one in ways that surface 10 to 20 minutes into a first
apply, or never (DESIGN fact 24): no Spot service-linked role, 5 Elastic IPs per region, vCPU
quotas of 0 for GPU instances, and zone ids where EKS places no control plane. constructs/preflight.py
reads the account at plan and refuses or warns before anything is created; this module holds the
knowledge it compares against (it moves with AWS: keep it here, with its sources), and the pure
helpers that turn the config into the reads and checks.

Sources (checked 2026-12): Amazon EKS User Guide, "View Amazon EKS networking requirements for VPC
and subnets" (the zone ids where ``CreateCluster`` fails with UnsupportedAvailabilityZoneException);
Amazon EC2 User Guide, "Amazon EC2 service quotas" and "Spot Instance quotas" (the vCPU quota
classes, their Service Quotas codes, Spot defaults Standard 5, G and VT 0, P 0); "Elastic IP address
quota" (5 per region, code ``L-0263D0A3``); "Amazon EC2 instance types, accelerated computing" (the
smallest size of each GPU family); "Service-linked role for Spot Instance requests"
(``AWSServiceRoleForEC2Spot``, service ``spot.amazonaws.com``); Amazon EKS User Guide, "Managed node
update behavior" (scale-up phase: an update raises the group's desired and maximum size by the larger
of twice its number of Availability Zones and its ``max_unavailable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field

from model.base import Model

# EKS refuses a control plane (CreateCluster) in these zone ids; AZ names map to zone ids per account.
NO_CONTROL_PLANE_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")

SPOT_SERVICE = "spot.amazonaws.com"
SPOT_ROLE_NAME = "AWSServiceRoleForEC2Spot"
SPOT_ROLE_PATH = f"/aws-service-role/{SPOT_SERVICE}/"

ELASTIC_IP_QUOTA = "L-0263D0A3"  # EC2-VPC Elastic IPs, per region (default 5)


@dataclass(frozen=True)
class VcpuClass:
    """One EC2 vCPU quota class: the instance categories it covers and its Service Quotas codes."""

    title: str
    categories: tuple[str, ...]
    on_demand: str
    spot: str
    spot_title: str
    spot_excludes: tuple[str, ...] = ()  # family prefixes the spot code does not cover (own quota, not read)

    def code(self, capacity_type: str) -> str:
        return self.spot if capacity_type == "spot" else self.on_demand

    def quota_name(self, capacity_type: str) -> str:
        if capacity_type == "spot":
            return f"All {self.spot_title} Spot Instance Requests"
        return f"Running On-Demand {self.title} instances"


# Only the classes whose codes are checked against the EC2 User Guide; a pool or controller type in
# another class (F, Inf, Trn, DL, X, HPC...) is not checked (and the README says so).
VCPU_CLASSES = (
    VcpuClass("Standard (A, C, D, H, I, M, R, T, Z)", ("a", "c", "d", "h", "i", "m", "r", "t", "z"),
              on_demand="L-1216C47A", spot="L-34B43A08", spot_title="Standard (A, C, D, H, I, M, R, T, Z)"),
    VcpuClass("G and VT", ("g", "gr", "vt"), on_demand="L-DB2E81BA", spot="L-3819A6DF", spot_title="G and VT"),
    VcpuClass("P", ("p",), on_demand="L-417A185B", spot="L-7212CCBC", spot_title="P4, P3 and P2",
              spot_excludes=("p5", "p6")),
)

# The vCPUs of the smallest size of a family (lower bounds: a check never refuses what would fit).
FAMILY_MIN_VCPUS = {"g4dn": 4, "g4ad": 4, "g5": 4, "g5g": 4, "g6": 4, "g6e": 4, "gr6": 4, "vt1": 12,
                    "p3": 8, "p3dn": 96, "p4d": 96, "p4de": 96, "p5": 16, "p5e": 192, "p5en": 192}
# ... and of a whole category (Graviton .medium sizes have 1 vCPU; g6f.large 2).
CATEGORY_MIN_VCPUS = {"g": 2, "gr": 4, "vt": 12, "p": 8}


class PreflightConfig(Model):
    """Plan-time checks of the AWS account (quotas, Spot service-linked role, zones) before anything is created."""

    quotas: bool = Field(
        True,
        description="Read the EC2 Service Quotas at plan (Elastic IPs for the NAT gateways, vCPUs for the controller "
        "nodes and each pool). Turn off only where the deploying identity may not call "
        "servicequotas:GetServiceQuota and servicequotas:GetAWSDefaultServiceQuota.")
    spot_role: bool = Field(
        True,
        description="Look for EC2's Spot service-linked role (AWSServiceRoleForEC2Spot) at plan when a pool allows "
        "spot: refused before the cluster exists, warned about later. The read (data.aws_iam_roles) needs "
        "iam:ListRoles; turn it off only where the planning identity may not call it, once the role is known to "
        "exist (npx cdktf deploy state-bootstrap creates it).")
    pool_vcpu_warnings: bool = Field(
        True,
        description="Warn at plan when a NodePool's vCPU quota cannot fit one instance of its smallest allowed type "
        "(the pool would launch nothing). A warning, not a refusal: the rest of the platform works, and the quota "
        "can be raised later without a new apply.")


@dataclass(frozen=True)
class ControllerReservation:
    """The controller nodes an On-Demand vCPU quota must hold besides the pools (DESIGN fact 26): the
    group at its desired size, the nodes EKS adds while it updates the group (an ``ami_alias`` bump, a
    version step), and a second group of the desired size while a create-before-destroy replacement
    runs beside the old one (constructs/cluster.py)."""

    desired: int
    surge: int

    @property
    def to_roll(self) -> int:
        """Nodes while an update rolls the group: what the group needs to work at all after day one."""
        return self.desired + self.surge

    @property
    def total(self) -> int:
        """Nodes at the worst moment: rolling, plus a replacement group."""
        return self.desired + self.surge + self.desired


def controller_reservation(desired: int, zones: int, max_unavailable: int) -> ControllerReservation:
    """EKS's scale-up phase adds max(2 x zones, max_unavailable) nodes to a managed node group it updates."""
    return ControllerReservation(desired=desired, surge=max(2 * zones, max_unavailable))


def category(family: str) -> str:
    """The instance category of a family, as Karpenter labels it: ``g5`` -> ``g``, ``p4d`` -> ``p``."""
    match = re.match(r"[a-z]+", family)
    return match.group(0) if match else family


def vcpu_class(category_: str) -> VcpuClass | None:
    return next((c for c in VCPU_CLASSES if category_ in c.categories), None)


@dataclass(frozen=True)
class PoolNeed:
    """A pool's need in one quota class and capacity type: at least ``vcpus`` for its smallest allowed
    instance there, of the categories or families ``what`` (``c/m``, ``g5/g6``)."""

    pool: str
    capacity_type: str
    vcpu_class: VcpuClass
    vcpus: int
    what: str

    @property
    def code(self) -> str:
        return self.vcpu_class.code(self.capacity_type)


def pool_needs(pool_name: str, capacity_types: tuple[str, ...], categories: tuple[str, ...],
               families: tuple[str, ...], architectures: tuple[str, ...]) -> list[PoolNeed]:
    """What one pool needs from each checked vCPU quota: per class and capacity type, the vCPUs of
    the smallest instance it allows there (categories and families outside the checked classes are
    left out)."""
    standard_min = 1 if "arm64" in architectures else 2
    by_class: dict[VcpuClass, list[tuple[int, str]]] = {}
    for cat in categories:
        cls = vcpu_class(cat)
        if cls:
            by_class.setdefault(cls, []).append((CATEGORY_MIN_VCPUS.get(cat, standard_min), cat))
    for family in families:
        cls = vcpu_class(category(family))
        if cls:
            vcpus = FAMILY_MIN_VCPUS.get(family, CATEGORY_MIN_VCPUS.get(category(family), standard_min))
            by_class.setdefault(cls, []).append((vcpus, family))
    needs = []
    for cls, entries in by_class.items():
        for capacity_type in capacity_types:
            usable = [e for e in entries if not (capacity_type == "spot" and e[1].startswith(cls.spot_excludes))]
            if usable:
                vcpus = min(v for v, _ in usable)
                what = "/".join(w for v, w in usable if v == vcpus)
                needs.append(PoolNeed(pool_name, capacity_type, cls, vcpus, what))
    return needs
