"""Network layer: the VPC the cluster and Karpenter's nodes live in, built by the stack or brought.

Two modes, one set of attributes (downstream never knows which): **owned** (the default) builds the
network below; **existing** (``config.existing``) builds none of it and reads, at plan, a VPC and private
(optionally public) subnets someone else owns, often shared to this account through AWS RAM, where the
stack cannot tag them (DESIGN fact 28): it creates no VPC, subnet, route, gateway, NAT or flow log, tags
none, so a destroy leaves them as they were; Karpenter selects the private subnets by id
(``node_subnet_ids``), ``egress`` and ``foundation`` are empty (no way out of ours to keep), and each
subnet outside the VPC and each private subnet whose route table has no default route is refused at plan
(``_existing``; zones and free addresses are the preflight's). The mode is latched: a switch either way is
refused at plan (``identity_guards``).

Owned:

Creates a VPC (DNS support + hostnames) with, per AZ, one public subnet (load balancers) and one
private subnet (nodes), an internet gateway, NAT gateways with EIPs (one per AZ, or one shared when
``single_nat_gateway``), route tables with associations, VPC flow logs to CloudWatch, and a
locked-down default security group (no rules: nothing may use it by accident).

Takes ``config`` (NetworkConfig), the cluster ``name`` and the ``aws`` context (account, region). Exposes, in
both modes, ``brought``, ``vpc_id``, ``private_subnet_ids``, ``public_subnet_ids`` (in AZ order; brought: as
listed), ``zones`` (brought: each private subnet's zone, read at plan), ``public_subnets`` / ``private_subnets``
and ``nat_gateways`` (by AZ; brought: empty), ``nat_eip_names``, ``node_subnet_ids``, ``foundation`` (the VPC,
subnets and internet gateway the destroy-time sweep must run before) and ``egress``: the internet gateway,
NAT gateways, routes and route-table associations that give the private subnets their way out; owned only,
``vpc`` and ``internet_gateway``. Whatever must still reach AWS APIs while it is being destroyed (Karpenter's releases, whose
finalizers terminate instances and delete instance profiles) depends on ``egress``, so a destroy
keeps the way out until those are gone (Terraform destroys in reverse dependency order only).

Identity (what decides whether a later change replaces something): logical ids are keyed by AZ name
(``private-us-west-2a``), never by list index, and AZ names are known at synth (config or
``<region>a..``). The **identity latch** ``terraform_data.identity`` records, at the first apply, what
must never change afterwards: ``name`` (in the cluster's, VPC's and every role's identity), ``region``
(a new region would build everything anew and lose track of the running platform), ``vpc_cidr``, both
subnet ``newbits`` and each zone's subnet CIDRs. It ignores later changes of its own input, so on every
later plan it holds the values of the first apply, and preconditions on the VPC refuse, at plan and
naming the key, any change of the first four (on the first apply the latch is unknown and the check
passes). Zones may grow, shrink and be listed in any order: the subnet CIDRs come from a local
(``_zone_cidrs``) that gives each zone of the first apply the CIDRs the latch recorded (the first apply
carves them by position, ``NetworkConfig.subnet_plan``), and each zone added since the free blocks of
its letter's rank (``NetworkConfig.growth_blocks``), so adding a zone creates its subnets, route table
and NAT gateway and moves nothing, and removing one deletes only its own; a removal under Karpenter's
nodes is refused at plan (``_refuse_removal_under_nodes``). With ``single_nat_gateway`` the one NAT
gateway sits in the first listed zone: listing another zone first moves it (a new EIP).
Public subnets do not map public IPs on launch: nothing in this
design needs one, and a node that lands there by mistake should not be exposed. Private subnets
carry ``karpenter.sh/discovery`` so the EC2NodeClass selector finds them; both kinds carry
``kubernetes.io/cluster/<name>=shared`` and their ELB role tag. Zone names are checked at plan
against the account's own list by the preflight (``constructs/preflight.py``, before anything is
created): synth cannot know which zones an account's region has.
"""

from __future__ import annotations

import json

from cdktf import DataResource, Postcondition, Precondition, TerraformLocal, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_ebs_volumes import DataAwsEbsVolumes
from cdktf_cdktf_provider_aws.data_aws_instances import DataAwsInstances
from cdktf_cdktf_provider_aws.data_aws_route_table import DataAwsRouteTable
from cdktf_cdktf_provider_aws.data_aws_route_tables import DataAwsRouteTables
from cdktf_cdktf_provider_aws.data_aws_subnet import DataAwsSubnet
from cdktf_cdktf_provider_aws.data_aws_vpc import DataAwsVpc
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
from model.network import ExistingNetwork, NetworkConfig
from model.tags import VOLUME_CLUSTER_TAG


ZONE_LETTERS = "abcdefghijklmnopqrstuvwxyz"  # an AZ name is its region and one letter (model/network.py)
MAX_FIRST_ZONES = 6  # the most zones a first apply records (network.az_count's limit)

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
    "vpc_id": "an EKS cluster cannot move to another VPC, so the cluster and its nodes would be replaced. Keep it, or "
              "build a new environment",
}


MODES = {"owned": "a network the stack builds", "existing": "an existing network"}


def identity_guards(latched: str, identity: dict, zone_cidrs: str | None = None) -> list[Precondition]:
    """Preconditions refusing any change of the latched ``identity`` (``latched``: the latch's output):
    the keys of WHY_FIXED the mode records, the network's mode (a latch of an environment from before
    the brought mode holds none: it was owned) and, brought, the VPC; owned, a zone list whose added
    zones find no free block (``zone_cidrs``: the local of each zone's CIDRs)."""
    guards = []
    mode = identity.get("network", "owned")
    other = "existing" if mode == "owned" else "owned"
    guards.append(Precondition(
        condition=f'${{lookup({latched}, "network", "owned") == "{mode}"}}',
        error_message=f"network.existing cannot change after the first apply (from {MODES[other]} to {MODES[mode]}): "
                      "an EKS cluster cannot move to another VPC, so every subnet, the cluster and its nodes would be "
                      "replaced. Keep the network it has, or build a new environment (a new file with its own name)."))
    for key, why in WHY_FIXED.items():
        if key not in identity:
            continue
        value = identity[key]
        literal = json.dumps(value)
        where = key if key in ("name", "region") else f"network.{'existing.' * (mode == 'existing')}{key}"
        guards.append(Precondition(
            condition=f"${{{latched}.{key} == {literal}}}" if key in ("name", "region") or mode == "owned"
            else f'${{lookup({latched}, "{key}", {literal}) == {literal}}}',
            error_message=f"{where} cannot change after the first apply (from ${{{latched}.{key}}} to {value}): {why}."))
    if zone_cidrs:
        guards.append(Precondition(
            condition=f"${{alltrue([for az, c in {zone_cidrs} : c != null])}}",
            error_message=f"network.az_count / network.availability_zones: no free block is left in network.vpc_cidr "
                          f"for the private and public subnets of ${{join(\", \", [for az, c in {zone_cidrs} : az if c == null])}} "
                          "(the zones of the first apply keep their blocks; added zones take free ones). Keep the "
                          "zones as they are, or build a new environment with a larger vpc_cidr."))
    return guards


class Network(Construct):
    """VPC, public/private subnets per AZ, IGW, NAT, routes, flow logs; or the reads of an existing network."""

    def __init__(self, scope: Construct, id_: str, *, config: NetworkConfig, name: str, aws: AwsContext,
                 kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        region = aws.region
        self.brought = config.existing is not None
        self.egress: list[Construct] = []  # the way out that is ours (none in an existing network)
        self.foundation: list[Construct] = []  # what the destroy-time sweep runs before (constructs/teardown.py)
        self.public_subnets: dict[str, Subnet] = {}
        self.private_subnets: dict[str, Subnet] = {}
        self.nat_gateways: dict[str, NatGateway] = {}
        self.nat_eip_names: list[str] = []  # the Name tags of this stack's NAT EIPs (constructs/preflight.py)
        self.node_subnet_ids: tuple[str, ...] = ()  # what the EC2NodeClass selects by id (empty: by discovery tag)
        self.subnet_zones: dict[str, str] = {}  # brought: {private subnet id: its zone, read at plan}
        self.private_subnet_reads: list = []  # brought: the data sources of the private subnets
        if config.existing is not None:
            self._existing(config.existing, name, region)
        else:
            self._owned(config, name, aws, kms_key_arn)

    def _existing(self, existing: ExistingNetwork, name: str, region: str) -> None:
        """Reads, at plan and before anything is created, the VPC, each subnet and each private subnet's
        route table (every argument a literal, so Terraform reads them at plan, DESIGN fact 19), and
        refuses a VPC without DNS resolution and hostnames (EKS's requirement), a subnet outside the VPC
        or a private subnet whose route table has no default route (nodes could not pull images). Zones
        and free addresses are the preflight's (constructs/preflight.py)."""
        identity = {"name": name, "region": region, "network": "existing", "vpc_id": existing.vpc_id}
        latch = DataResource(self, "identity", input=identity,
                             lifecycle=TerraformResourceLifecycle(ignore_changes=["input"]))
        # the guards sit on a resource of their own: on a read they would defer it to apply on the first apply
        DataResource(self, "existing-network", input={"vpc_id": existing.vpc_id,
                                                      "private_subnet_ids": list(existing.private_subnet_ids),
                                                      "public_subnet_ids": list(existing.public_subnet_ids)},
                     lifecycle=TerraformResourceLifecycle(precondition=identity_guards(
                         f"terraform_data.{latch.friendly_unique_id}.output", identity)))
        # EKS: without DNS resolution and hostnames in the VPC, nodes cannot register with the cluster
        DataAwsVpc(self, "vpc", id=existing.vpc_id, lifecycle=TerraformResourceLifecycle(postcondition=[
            Postcondition(condition="${self.enable_dns_support && self.enable_dns_hostnames}",
                          error_message=f"network.existing.vpc_id: {existing.vpc_id} has DNS resolution "
                                        "${self.enable_dns_support ? \"on\" : \"off\"} and DNS hostnames "
                                        "${self.enable_dns_hostnames ? \"on\" : \"off\"}; EKS needs both, or nodes "
                                        "cannot register with the cluster: ask the network's owner to turn them on "
                                        f"(aws ec2 modify-vpc-attribute --vpc-id {existing.vpc_id} "
                                        "--enable-dns-hostnames), then plan again.")]))
        main_table = DataAwsRouteTable(self, "main-route-table", vpc_id=existing.vpc_id,
                                       filter=[{"name": "association.main", "values": ["true"]}])
        outside = ("network.existing.{kind}_subnet_ids: {sid} is in ${{self.vpc_id}}, not in network.existing.vpc_id "
                   f"{existing.vpc_id}; list subnets of that VPC (aws ec2 describe-subnets --filters "
                   f"Name=vpc-id,Values={existing.vpc_id}).")
        for kind, ids in (("private", existing.private_subnet_ids), ("public", existing.public_subnet_ids)):
            for sid in ids:
                read = DataAwsSubnet(self, f"{kind}-{sid}", id=sid, lifecycle=TerraformResourceLifecycle(
                    postcondition=[Postcondition(condition=f'${{self.vpc_id == "{existing.vpc_id}"}}',
                                                 error_message=outside.format(kind=kind, sid=sid))]))
                if kind == "public":
                    continue
                self.private_subnet_reads.append(read)
                self.subnet_zones[sid] = f"${{data.aws_subnet.{read.friendly_unique_id}.availability_zone}}"
                explicit = DataAwsRouteTables(self, f"{sid}-route-tables", vpc_id=existing.vpc_id,
                                              filter=[{"name": "association.subnet-id", "values": [sid]}])
                DataAwsRouteTable(
                    self, f"{sid}-route-table",
                    route_table_id=f"${{coalesce(one({explicit.fqn}.ids), {main_table.fqn}.route_table_id)}}",
                    lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
                        condition='${anytrue([for r in self.routes : r.cidr_block == "0.0.0.0/0"])}',
                        error_message=(
                            f"network.existing.private_subnet_ids: {sid} routes through ${{self.route_table_id}}, "
                            "which has no default route (0.0.0.0/0 to a NAT or transit gateway), so nodes there "
                            "could not reach ECR, EKS or the other AWS APIs they need; ask the network's owner "
                            "for that route, or list private subnets that have one."))]))
        self.vpc_id: str = existing.vpc_id
        self.zones: tuple[str, ...] = tuple(self.subnet_zones.values())
        self.private_subnet_ids: list[str] = list(existing.private_subnet_ids)
        self.public_subnet_ids: list[str] = list(existing.public_subnet_ids)
        self.node_subnet_ids = existing.private_subnet_ids

    def _owned(self, config: NetworkConfig, name: str, aws: AwsContext, kms_key_arn: str) -> None:
        region = aws.region
        self.zones: tuple[str, ...] = config.zones(region)
        plan = config.subnet_plan(region)  # the first apply's; the latch keeps it
        cluster_tag = {f"kubernetes.io/cluster/{name}": "shared"}

        identity = {"name": name, "region": region, "vpc_cidr": config.vpc_cidr,
                    "private_subnet_newbits": config.private_subnet_newbits,
                    "public_subnet_newbits": config.public_subnet_newbits, "subnets": plan}
        latch = DataResource(self, "identity", input=identity,
                             lifecycle=TerraformResourceLifecycle(ignore_changes=["input"]))
        zone_cidrs = self._zone_cidrs(config, region, f"terraform_data.{latch.friendly_unique_id}.input")
        vpc = Vpc(self, "vpc", cidr_block=config.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                  tags={"Name": name}, lifecycle=TerraformResourceLifecycle(precondition=identity_guards(
                      f"terraform_data.{latch.friendly_unique_id}.output", identity, zone_cidrs)))
        self._refuse_removal_under_nodes(name, region)
        self.vpc = vpc
        self.vpc_id: str = vpc.id

        DefaultSecurityGroup(self, "default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-unused"})

        igw = InternetGateway(self, "igw", vpc_id=vpc.id, tags={"Name": name})
        self.internet_gateway = igw

        public_rt = RouteTable(self, "public-rt", vpc_id=vpc.id, tags={"Name": f"{name}-public"})
        public_route = Route(self, "public-default-route", route_table_id=public_rt.id,
                             destination_cidr_block="0.0.0.0/0", gateway_id=igw.id)
        self.egress += [igw, public_route]
        nat_by_az: dict[str, NatGateway] = {}
        nat_zones = self.zones[:1] if config.single_nat_gateway else self.zones

        for az in self.zones:
            public = Subnet(
                self, f"public-{az}", vpc_id=vpc.id, availability_zone=az, cidr_block=f"${{{zone_cidrs}[\"{az}\"].public}}",
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{az}", "kubernetes.io/role/elb": "1", **cluster_tag},
            )
            self.egress.append(
                RouteTableAssociation(self, f"public-{az}-rta", subnet_id=public.id, route_table_id=public_rt.id))
            self.public_subnets[az] = public

            private = Subnet(
                self, f"private-{az}", vpc_id=vpc.id, availability_zone=az, cidr_block=f"${{{zone_cidrs}[\"{az}\"].private}}",
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
        self.foundation = [vpc, *self.public_subnets.values(), *self.private_subnets.values(), igw]

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

    def _zone_cidrs(self, config: NetworkConfig, region: str, latched: str) -> str:
        """A local ``{az: {private, public}}`` for the zones in use, and its reference: a zone the first
        apply recorded keeps its CIDRs (read from the latch's ``input``, which ``ignore_changes`` holds at
        the first apply's value and which is known at plan, on the first apply too); a zone added since
        takes the growth pair of its letter's rank among the region's letters the first apply did not
        use (``NetworkConfig.growth_blocks``), or null when the VPC has no free pair left (the VPC's
        precondition names it)."""
        letters = [f"{region}{c}" for c in ZONE_LETTERS]
        wanted = max(ZONE_LETTERS.index(az[-1]) for az in self.zones) + 1
        counts = range(2, max(MAX_FIRST_ZONES, len(self.zones)) + 1)
        growth = json.dumps({str(m): config.growth_blocks(m, wanted) for m in counts})
        rank = f"index(sort(setsubtract({json.dumps(letters)}, keys({latched}.subnets))), az)"
        local = TerraformLocal(self, "zone-cidrs", (
            f"${{ {{for az in {json.dumps(list(self.zones))} : az => try({latched}.subnets[az], "
            f"{growth}[tostring(length({latched}.subnets))][{rank}], null)}} }}"))
        return f"local.{local.friendly_unique_id}"

    def _refuse_removal_under_nodes(self, name: str, region: str) -> None:
        """Refuse, at plan, a zone list that drops a zone where Karpenter's nodes of this cluster still run
        (its private subnet could not be deleted under them: DependencyViolation after the rest of the
        change is applied), or where its PersistentVolumeClaims' volumes are (zonal: their pods could run
        nowhere else). Literal reads (name, zones), so they are decided at plan on every plan. The controller
        node group needs no check: Terraform replaces it, the new one first, in the zones that stay."""
        gone = [f"{region}{c}" for c in ZONE_LETTERS if f"{region}{c}" not in self.zones]
        DataAwsInstances(
            self, "nodes-outside-zones", instance_state_names=["pending", "running", "stopping", "stopped"],
            filter=[{"name": "availability-zone", "values": gone},
                    {"name": "tag:karpenter.sh/discovery", "values": [name]}],
            lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
                condition="${length(self.ids) == 0}",
                error_message=(
                    "network.az_count / network.availability_zones: Karpenter's nodes of this cluster still run "
                    "in a zone this change removes (${join(\", \", self.ids)}), and that zone's private subnet "
                    "cannot be deleted under them. Drain them first (kubectl get nodes -l "
                    "topology.kubernetes.io/zone=<zone>; kubectl drain <node> --ignore-daemonsets "
                    "--delete-emptydir-data, then kubectl delete nodeclaim for each), then plan again: only that "
                    "zone's subnets, route table and NAT gateway go."))]))
        # A PersistentVolumeClaim's volume cannot leave its zone (the StorageClass tags them Cluster=<name>).
        DataAwsEbsVolumes(
            self, "volumes-outside-zones",
            filter=[{"name": "availability-zone", "values": gone}, {"name": f"tag:{VOLUME_CLUSTER_TAG}", "values": [name]}],
            lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
                condition="${length(self.ids) == 0}",
                error_message=(
                    "network.az_count / network.availability_zones: volumes of this cluster (PersistentVolumeClaims) "
                    "are in a zone this change removes (${join(\", \", self.ids)}), and a volume cannot leave its "
                    "zone: the pods that use them could run nowhere else. Move their data first (snapshot each "
                    "volume and restore it in a zone that stays, or delete the claims), then plan again."))]))
