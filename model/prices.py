"""AWS list prices the README's cost table is computed from: on-demand, USD, us-west-2, checked 2026-12-01.

Every price names its source. EKS (standard and extended), NAT gateway, public IPv4, KMS and CloudWatch Logs
prices were confirmed on 2026-12-01 against AWS's pages and 2026 price guides; the EC2 and EBS prices are AWS's
long-standing us-west-2 list prices (t3.large confirmed by a 2026 table, m6i.large and EBS not re-confirmed):
check them at the sources before relying on the totals. Moving a price is one change here; ``python -m stacks.docs`` rewrites the table
and a test fails while the README's table differs from what these prices and the current synth give.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-12-01"
REGION = "us-west-2"
HOURS_PER_MONTH = 730  # AWS's pricing calculator uses 730 hours a month


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


PRICES: dict[str, Price] = {
    "eks_standard": Price(0.10, "cluster-hour", "https://aws.amazon.com/eks/pricing/"),
    "eks_extended": Price(0.60, "cluster-hour", "https://aws.amazon.com/eks/pricing/ (extended support, since 2024-04-01)"),
    "nat_hour": Price(0.045, "NAT-gateway-hour", "https://aws.amazon.com/vpc/pricing/"),
    "nat_gb": Price(0.045, "GB processed", "https://aws.amazon.com/vpc/pricing/"),
    "public_ipv4": Price(0.005, "address-hour", "https://aws.amazon.com/vpc/pricing/ (public IPv4, since 2024-02-01)"),
    "kms_key": Price(1.00, "key-month", "https://aws.amazon.com/kms/pricing/ (+$1 a month for each of the first two rotations)"),
    "logs_ingest": Price(0.50, "GB ingested", "https://aws.amazon.com/cloudwatch/pricing/ (standard class; vended flow logs the same up to 10 TB)"),
    "logs_store": Price(0.03, "GB-month stored", "https://aws.amazon.com/cloudwatch/pricing/"),
    "ebs_gp2": Price(0.10, "GB-month", "https://aws.amazon.com/ebs/pricing/ (gp2; gp3 is $0.08)"),
}

# EC2 on-demand, Linux, us-west-2 (https://aws.amazon.com/ec2/pricing/on-demand/): the controller node types
# the shipped environments use. A type missing here makes `python -m stacks.docs` say so.
EC2_ON_DEMAND: dict[str, float] = {
    "t3.large": 0.0832,
    "m6i.large": 0.096,
}
