"""Network layer: the VPC the cluster and Karpenter's nodes live in.

Creates a VPC (DNS support + hostnames) with, per AZ, one public subnet (load balancers) and one
private subnet (nodes), an internet gateway, NAT gateways with EIPs (one per AZ, or one shared when
``single_nat_gateway``), route tables with associations, VPC flow logs to CloudWatch, and a
locked-down default security group (no rules: nothing may use it by accident).

Takes ``config`` (NetworkConfig), the cluster ``name`` and the ``aws`` context (account, region). Exposes ``vpc_id``,
``private_subnet_ids``, ``public_subnet_ids`` (in AZ order), ``zones``, ``vpc``, ``public_subnets`` /
``private_subnets`` and ``internet_gateway`` (by AZ / the resources), ``nat_eip_names``, and ``egress``: the internet
gateway, NAT gateways, routes and route-table associations that give the private subnets their way
out. Whatever must still reach AWS APIs while it is being destroyed (Karpenter's releases, whose
finalizers terminate instances and delete instance profiles) depends on ``egress``, so a destroy
keeps the way out until those are gone (Terraform destroys in reverse dependency order only).

Identity (what decides whether a later change replaces something): logical ids are keyed by AZ name
(``private-us-west-2a``), never by list index, and AZ names are known at synth (config or
``<region>a..``). Subnet CIDRs are carved by position (``NetworkConfig.subnet_plan``: every private
block, then every public one), so adding or removing a zone moves the CIDRs of zones that stay (with
3 zones the public /24s follow 3 private /19s; a 4th private /19 pushes them along), which would
replace those subnets and the NAT gateways in them (their public IPs are often on allow-lists). So
the **identity latch** ``terraform_data.identity`` records, at the first apply, what must never change
afterwards: ``name`` (in the cluster's, VPC's and every role's identity), ``region`` (a new region
would build everything anew and lose track of the running platform), ``vpc_cidr``, both subnet
``newbits`` and each zone's subnet CIDRs. It ignores later changes of its own input, so on every
later plan it holds the values of the first apply, and preconditions on the VPC refuse, at plan and
naming the key, any change of them (on the first apply the latch is unknown and the check passes). Public subnets do not map public IPs on launch: nothing in this
design needs one, and a node that lands there by mistake should not be exposed. Private subnets
carry ``karpenter.sh/discovery`` so the EC2NodeClass selector finds them; both kinds carry
``kubernetes.io/cluster/<name>=shared`` and their ELB role tag. Zone names are checked at plan
against the account's own list by the preflight (``constructs/preflight.py``, before anything is
created): synth cannot know which zones an account's region has.
"""

from __future__ import annotations

import json

from cdktf import DataResource, Precondition, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from constructs.policy import AwsContext, policy_document
from model import names
from model.network import NetworkConfig


WHY_FIXED = {
    "name": "it is part of the cluster's, the VPC's and every role's identity, so all of them would be replaced. "
            "Create a new environment file for the new name",
    "region": "Terraform would build the whole platform anew there and lose track of the running one. Create a new "
              "environment file for that region",
    "vpc_cidr": "the VPC and every subnet would be replaced. Keep it, or build a new environment",
    "private_subnet_newbits": "every private subnet would be replaced with its nodes. Keep it, or build a new "
                              "environment",
    "public_subnet_newbits": "every public subnet would be replaced with its NAT gateway. Keep it, or build a new "
                             "environment",
}


def identity_guards(latched: str, identity: dict) -> list[Precondition]:
    """Preconditions refusing any change of the latched ``identity`` (``latched``: the latch's output)."""
    guards = []
    for key, why in WHY_FIXED.items():
        value = identity[key]
        literal = json.dumps(value)
        where = key if key in ("name", "region") else f"network.{key}"
        guards.append(Precondition(
            condition=f"${{{latched}.{key} == {literal}}}",
            error_message=f"{where} cannot change after the first apply (from ${{{latched}.{key}}} to {value}): {why}."))
    subnets = json.dumps(json.dumps(identity["subnets"]))
    guards.append(Precondition(
        # lookup, not `!contains(...) || x[az]`: Terraform before 1.12 evaluates both sides of ||, and a
        # removed zone would fail with "Invalid index" instead of this message
        condition=f"${{alltrue([for az, cidrs in {latched}.subnets : lookup(jsondecode({subnets}), az, cidrs) == cidrs])}}",
        error_message="network.az_count / network.availability_zones: this change moves the subnet CIDRs of zones "
                      "that stay (subnets are carved by position), which would replace those subnets and the NAT "
                      "gateways in them. Keep the zones as they are, or build a new environment."))
    return guards


class Network(Construct):
    """VPC, public/private subnets per AZ, IGW, NAT, routes, flow logs."""

    def __init__(self, scope: Construct, id_: str, *, config: NetworkConfig, name: str, aws: AwsContext,
                 kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        region = aws.region
        self.zones: tuple[str, ...] = config.zones(region)
        plan = config.subnet_plan(region)
        cluster_tag = {f"kubernetes.io/cluster/{name}": "shared"}

        identity = {"name": name, "region": region, "vpc_cidr": config.vpc_cidr,
                    "private_subnet_newbits": config.private_subnet_newbits,
                    "public_subnet_newbits": config.public_subnet_newbits, "subnets": plan}
        latch = DataResource(self, "identity", input=identity,
                             lifecycle=TerraformResourceLifecycle(ignore_changes=["input"]))
        vpc = Vpc(self, "vpc", cidr_block=config.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                  tags={"Name": name}, lifecycle=TerraformResourceLifecycle(precondition=identity_guards(
                      f"terraform_data.{latch.friendly_unique_id}.output", identity)))
        self.vpc = vpc
        self.vpc_id: str = vpc.id

        DefaultSecurityGroup(self, "default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-unused"})

        igw = InternetGateway(self, "igw", vpc_id=vpc.id, tags={"Name": name})
        self.internet_gateway = igw

        public_rt = RouteTable(self, "public-rt", vpc_id=vpc.id, tags={"Name": f"{name}-public"})
        public_route = Route(self, "public-default-route", route_table_id=public_rt.id,
                             destination_cidr_block="0.0.0.0/0", gateway_id=igw.id)
        self.egress: list[Construct] = [igw, public_route]

        self.public_subnets: dict[str, Subnet] = {}
        self.private_subnets: dict[str, Subnet] = {}
        nat_by_az: dict[str, NatGateway] = {}
        self.nat_eip_names: list[str] = []  # the Name tags of this stack's NAT EIPs (constructs/preflight.py)
        nat_zones = self.zones[:1] if config.single_nat_gateway else self.zones

        for az in self.zones:
            public = Subnet(
                self, f"public-{az}", vpc_id=vpc.id, availability_zone=az, cidr_block=plan[az]["public"],
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{az}", "kubernetes.io/role/elb": "1", **cluster_tag},
            )
            self.egress.append(
                RouteTableAssociation(self, f"public-{az}-rta", subnet_id=public.id, route_table_id=public_rt.id))
            self.public_subnets[az] = public

            private = Subnet(
                self, f"private-{az}", vpc_id=vpc.id, availability_zone=az, cidr_block=plan[az]["private"],
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{az}", "kubernetes.io/role/internal-elb": "1",
                      "karpenter.sh/discovery": name, **cluster_tag},
            )
            self.private_subnets[az] = private

            if az in nat_zones:
                self.nat_eip_names.append(f"{name}-nat-{az}")
                eip = Eip(self, f"nat-eip-{az}", domain="vpc", tags={"Name": self.nat_eip_names[-1]},
                          depends_on=[igw])
                nat_by_az[az] = NatGateway(self, f"nat-{az}", allocation_id=eip.id, subnet_id=public.id,
                                           tags={"Name": f"{name}-{az}"}, depends_on=[igw])
                self.egress.append(nat_by_az[az])

        for az, private in self.private_subnets.items():
            nat = nat_by_az.get(az) or nat_by_az[nat_zones[0]]
            rt = RouteTable(self, f"private-{az}-rt", vpc_id=vpc.id, tags={"Name": f"{name}-private-{az}"})
            self.egress += [
                Route(self, f"private-{az}-default-route", route_table_id=rt.id, destination_cidr_block="0.0.0.0/0",
                      nat_gateway_id=nat.id),
                RouteTableAssociation(self, f"private-{az}-rta", subnet_id=private.id, route_table_id=rt.id),
            ]

        self.nat_gateways = nat_by_az
        self.public_subnet_ids: list[str] = [s.id for s in self.public_subnets.values()]
        self.private_subnet_ids: list[str] = [s.id for s in self.private_subnets.values()]

        # VPC flow logs (all traffic) to an encrypted CloudWatch log group.
        log_group = CloudwatchLogGroup(self, "flow-logs", name=names.derived("flow_log_group", name),
                                       retention_in_days=config.flow_log_retention_days, kms_key_id=kms_key_arn)
        # Confused-deputy guard: only flow logs of this account may assume the role.
        trust = policy_document(self, "flow-logs-trust", [{
            "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": aws.account_id},
                          "ArnLike": {"aws:SourceArn": f"arn:{aws.partition}:ec2:{region}:{aws.account_id}:vpc-flow-log/*"}},
        }])
        role = IamRole(self, "flow-logs-role", name=names.derived("flow_logs_role", name), assume_role_policy=trust.json)
        # AWS documents CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups and
        # DescribeLogStreams for delivery to CloudWatch Logs. All but CreateLogGroup are granted: the
        # group is Terraform's (retention, KMS), and a service that may create it would re-create a
        # deleted group without either. DescribeLogGroups (a read of group names) takes no resource
        # narrower than "*" in the IAM service reference.
        write_logs = policy_document(self, "flow-logs-write", [
            {
                "Sid": "DeliverFlowLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": f"{log_group.arn}:*",
            },
            {
                "Sid": "FindLogGroup",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*",
            },
        ])
        grant = IamRolePolicy(self, "flow-logs-policy", name="write-flow-logs", role=role.id, policy=write_logs.json)
        FlowLog(self, "flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                log_destination=log_group.arn, iam_role_arn=role.arn, max_aggregation_interval=60,
                depends_on=[grant])  # no access-denied deliveries before the role may write
