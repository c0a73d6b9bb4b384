"""The network layer's config, in one of two modes, and the subnet plan.

Owned (the default): the stack builds the VPC, its subnets per zone, NAT and flow logs from ``vpc_cidr``,
the zones and the subnet sizes. Brought (``existing``): the stack builds no network; it uses a VPC and
private subnets someone else owns (a network team, often sharing them to this account through AWS RAM)
and never tags, changes or destroys them. The mode is fixed after the first apply (constructs/network.py)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from model.base import Cidr, Model, RetentionDays, hint

VPC_ID_PATTERN = hint(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$", "use a VPC id such as vpc-0123456789abcdef0")
SUBNET_ID_PATTERN = hint(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$", "use a subnet id such as subnet-0123456789abcdef0")
SubnetId = Annotated[str, StringConstraints(pattern=SUBNET_ID_PATTERN)]

ADDRESSES_PER_VCPU = 5
"""Free private addresses a pool's vCPU limit is counted at in the brought-network warning: the VPC CNI
gives every pod an address, and EC2's per-type pod limits (ENIs × addresses per ENI, eni-max-pods) are
5 to 15 pods per vCPU on the general-purpose sizes (m5.12xlarge 234 pods on 48 vCPUs, m5.large 29 on 2);
the lowest is the warning's floor, so it never warns where the pools would fit."""

AZ_PATTERN = hint(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", "use an availability zone name such as us-west-2a")


def _unique(v: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(v)) != len(v):
        raise ValueError("lists a subnet twice; list each once")
    return v


def _two(v: tuple[str, ...]) -> tuple[str, ...]:
    if len(v) < 2:
        raise ValueError("EKS needs subnets in at least 2 zones; list 2 or more private subnets")
    return v


class ExistingNetwork(Model):
    """A VPC and subnets the stack uses but does not own: it creates no VPC, subnet, route, gateway, NAT or
    flow log, and never tags or destroys them. Works in a shared VPC (AWS RAM): the EC2NodeClass selects the
    private subnets by id. The network owner tags them: private subnets ``kubernetes.io/role/internal-elb=1``,
    public ones ``kubernetes.io/role/elb=1`` (the load balancer controller's subnet discovery)."""

    vpc_id: Annotated[str, StringConstraints(pattern=VPC_ID_PATTERN)] = Field(
        description="The existing VPC's id. Fixed after the first apply.")
    private_subnet_ids: Annotated[tuple[SubnetId, ...], AfterValidator(_unique), AfterValidator(_two)] = Field(
        description="Private subnets for the control plane's interfaces and every node, in at least "
        "two zones, each with a default route (NAT or transit gateway); checked at plan.")
    public_subnet_ids: Annotated[tuple[SubnetId, ...], AfterValidator(_unique)] = Field(
        (), description="Public subnets for internet-facing load balancers; empty: the platform has none of its own.")


class NetworkConfig(Model):
    """VPC, subnets and NAT, built by the stack (owned, the default: subnet CIDRs derived from ``vpc_cidr``), or an existing network (``existing``)."""

    vpc_cidr: Cidr = Field("10.0.0.0/16", description="VPC IPv4 CIDR block (/16 to /24).")
    az_count: int = Field(3, ge=2, le=6, description="Number of AZs used when availability_zones is empty; at least 2. "
                          "Zones may be added or removed later: each zone keeps its subnets, an added one takes free blocks.")
    availability_zones: tuple[Annotated[str, StringConstraints(pattern=AZ_PATTERN)], ...] = Field(
        (),
        description="Explicit AZ names; empty = the region's first az_count zones (<region>a, b, c, ...). Their order "
        "changes nothing (with single_nat_gateway, the NAT gateway is in the first).",
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
    existing: ExistingNetwork | None = Field(
        None, description="Use an existing VPC and subnets instead of building them (leave the keys above out): the "
        "stack creates, tags, changes and destroys none of them, and Karpenter selects the private subnets by id. The "
        "network's owner tags private subnets kubernetes.io/role/internal-elb=1 and public ones kubernetes.io/role/elb=1. "
        "Fixed after the first apply: an environment cannot move between its own network and an existing one.")

    @model_validator(mode="after")
    def _one_mode(self) -> NetworkConfig:
        owned = sorted(k for k in self.model_fields_set if k != "existing")
        if self.existing is not None and owned:
            them = "them" if len(owned) > 1 else "it"
            raise ValueError(f"with existing (a network the stack does not build), leave out {', '.join(owned)}: "
                             f"the network's owner decides {them}")
        return self

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
        """``{az: {"private": cidr, "public": cidr}}`` of a first apply: private blocks first (largest),
        then public, each at the next aligned free block, like Terraform's ``cidrsubnet``. Raises
        ValueError when they do not fit inside ``vpc_cidr``. The identity latch records this plan at the
        first apply, and every later plan takes each recorded zone's CIDRs from there
        (constructs/network.py), so a zone's place in the list never moves its subnets."""
        zones = self.zones(region)
        return dict(zip(zones, self._carve(len(zones), zones), strict=True))

    def _carve(self, count: int, zones: tuple[str, ...] = ()) -> list[dict[str, str]]:
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        cursor = int(vpc.network_address)
        plan: list[dict[str, str]] = [{} for _ in range(count)]
        for kind, newbits in (("private", self.private_subnet_newbits), ("public", self.public_subnet_newbits)):
            prefix = vpc.prefixlen + newbits
            if prefix > 28:
                raise ValueError(
                    f"{kind}_subnet_newbits={newbits} makes /{prefix} subnets; AWS subnets are /16 to /28, lower it"
                )
            size = 2 ** (32 - prefix)
            for i in range(count):
                cursor = -(-cursor // size) * size  # align up to the block size
                net = ipaddress.IPv4Network((cursor, prefix))
                if not net.subnet_of(vpc):
                    raise ValueError(
                        f"{count} private /{vpc.prefixlen + self.private_subnet_newbits} and "
                        f"{count} public /{vpc.prefixlen + self.public_subnet_newbits} subnets do not fit in "
                        f"{self.vpc_cidr}; raise private_subnet_newbits/public_subnet_newbits (smaller subnets), use fewer AZs or a larger vpc_cidr"
                    )
                plan[i][kind] = str(net)
                cursor += size
        return plan

    def growth_blocks(self, latched: int, wanted: int) -> list[dict[str, str]]:
        """The blocks zones added after a first apply of ``latched`` zones take, in order (at most
        ``wanted`` pairs; fewer when the VPC is full): for each, the lowest free aligned private block,
        then the lowest free aligned public one, outside every subnet of that first apply and of the
        pairs before it. A zone added later takes the pair of its letter's rank among the region's
        letters the first apply did not use (constructs/network.py), so which zones are added, and in
        what order, never moves another added zone."""
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        try:
            first = self._carve(latched)
        except ValueError:
            return []
        # [start, end) address ranges, in integers (ipaddress objects are slow at this many comparisons)
        taken = [(int(n.network_address), int(n.broadcast_address) + 1)
                 for n in (ipaddress.IPv4Network(c) for zone in first for c in zone.values())]
        base, top = int(vpc.network_address), int(vpc.broadcast_address) + 1
        out: list[dict[str, str]] = []
        while len(out) < wanted:
            pair = {}
            for kind, newbits in (("private", self.private_subnet_newbits), ("public", self.public_subnet_newbits)):
                size = 2 ** (32 - vpc.prefixlen - newbits)
                start = next((a for a in range(base, top, size)
                              if not any(a < end and a + size > begin for begin, end in taken)), None)
                if start is None:
                    return out
                pair[kind] = str(ipaddress.IPv4Network((start, vpc.prefixlen + newbits)))
                taken.append((start, start + size))
            out.append(pair)
        return out
