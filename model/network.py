"""The network layer's config: VPC CIDR, AZs, subnet sizes, NAT, flow logs; and the subnet plan."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from model.base import Cidr, Model, RetentionDays, hint

AZ_PATTERN = hint(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", "use an availability zone name such as us-west-2a")


class NetworkConfig(Model):
    """VPC, subnets and NAT. Subnet CIDRs are derived from ``vpc_cidr`` (cidrsubnet-style)."""

    vpc_cidr: Cidr = Field("10.0.0.0/16", description="VPC IPv4 CIDR block (/16 to /24).")
    az_count: int = Field(3, ge=2, le=6, description="Number of AZs used when availability_zones is empty; at least 2.")
    availability_zones: tuple[Annotated[str, StringConstraints(pattern=AZ_PATTERN)], ...] = Field(
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
