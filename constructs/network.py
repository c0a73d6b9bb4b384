"""Network layer: the VPC the cluster and Karpenter's nodes live in.

Creates a VPC (DNS support + hostnames) with, per AZ, one public subnet (load balancers) and one
private subnet (nodes), an internet gateway, NAT gateways with EIPs (one per AZ, or one shared when
``single_nat_gateway``), route tables with associations, VPC flow logs to CloudWatch, and a
locked-down default security group (no rules: nothing may use it by accident).

Takes ``config`` (NetworkConfig), the cluster ``name`` and the ``aws`` context (account, region). Exposes ``vpc_id``,
``private_subnet_ids``, ``public_subnet_ids`` (in AZ order), ``zones``, ``nat_eip_names`` and ``egress``: the internet
gateway, NAT gateways, routes and route-table associations that give the private subnets their way
out. Whatever must still reach AWS APIs while it is being destroyed (Karpenter's releases, whose
finalizers terminate instances and delete instance profiles) depends on ``egress``, so a destroy
keeps the way out until those are gone (Terraform destroys in reverse dependency order only).

Choices: logical ids are keyed by AZ name (``private-us-west-2a``), never by list index, so adding
an AZ never renumbers (and replaces) existing subnets. AZ names are known at synth (config or
``<region>a..``) for that reason. Public subnets do not map public IPs on launch: nothing in this
design needs one, and a node that lands there by mistake should not be exposed. Private subnets
carry ``karpenter.sh/discovery`` so the EC2NodeClass selector finds them; both kinds carry
``kubernetes.io/cluster/<name>=shared`` and their ELB role tag.
"""

from __future__ import annotations

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


class Network(Construct):
    """VPC, public/private subnets per AZ, IGW, NAT, routes, flow logs."""

    def __init__(self, scope: Construct, id_: str, *, config: NetworkConfig, name: str, aws: AwsContext,
                 kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        region = aws.region
        self.zones: tuple[str, ...] = config.zones(region)
        plan = config.subnet_plan(region)
        cluster_tag = {f"kubernetes.io/cluster/{name}": "shared"}

        vpc = Vpc(self, "vpc", cidr_block=config.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                  tags={"Name": name})
        self.vpc = vpc
        self.vpc_id: str = vpc.id

        DefaultSecurityGroup(self, "default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-unused"})

        igw = InternetGateway(self, "igw", vpc_id=vpc.id, tags={"Name": name})

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
