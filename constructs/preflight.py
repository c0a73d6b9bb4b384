"""Preflight layer: reads the AWS account at plan and refuses (or warns about) what would fail a
first apply 10 to 20 minutes in, before anything is created (DESIGN fact 24).

Reads only data sources whose arguments are literals (never a managed resource: a data source that
depends on a resource with changes pending is read during apply, fact 19), so every check is decided
by ``terraform plan``. Refusals are postconditions on those reads (the plan fails with one message
naming the fix); warnings are ``check`` blocks (printed at plan, never failing it). In order:

1. **Zones** (refuse): each AZ the cluster's subnets use must be a zone where EKS places a control
   plane: zone ids ``use1-az3``, ``usw1-az2``, ``cac1-az3`` are not (``data.aws_availability_zones``
   maps this account's AZ names to zone ids; the mapping differs per account). The message names the
   zone, its id and the other zones of the region, of type ``availability-zone`` only (an opted-in
   Local or Wavelength Zone is listed by the same read unless filtered, and cannot hold the cluster).
2. **Spot service-linked role** (when a pool allows spot): ``AWSServiceRoleForEC2Spot`` must exist
   (``data.aws_iam_roles`` under ``/aws-service-role/spot.amazonaws.com/``); without it Karpenter's
   spot launches fail (``AuthFailure.ServiceLinkedRoleCreationNotPermitted``) and the pool silently
   runs on-demand. Refused while the cluster does not exist yet; for a running cluster a warning
   (every plan of it, even an urgent fix, would otherwise be blocked by an account-wide role). The
   ``state-bootstrap`` stack creates the role once per account (stacks/state_bucket.py). The read needs
   ``iam:ListRoles``; ``preflight.spot_role: false`` turns it off (``preflight.quotas`` does not: it is
   no quota) for a planning identity without it.
3. **Elastic IPs** (refuse; ``preflight.quotas``): the NAT gateways' addresses plus those allocated
   in the region by anything but this stack must fit the quota ``L-0263D0A3``. This stack's own
   addresses (found by their Name tags) are not counted twice, so a re-plan of a running environment
   is never refused.
4. **Controller vCPUs** (refuse; ``preflight.quotas``): a quota counts every running instance, the
   stack's own too (DESIGN fact 26). ``node_desired_size`` controller nodes of ``node_instance_type``
   (vCPUs from ``data.aws_ec2_instance_type``) plus the nodes EKS adds while it updates the group
   (max(2 x its zones, ``max_unavailable``): every ``ami_alias`` bump and version step) must fit the
   On-Demand quota of their class, or the group never comes up or its first update fails. A warning
   when a replacement group (create_before_destroy) beside them would not fit.
5. **Pool vCPUs** (warn; ``preflight.pool_vcpu_warnings``): per pool and capacity type, the quota of
   each checked class it uses, less what the controller nodes may take of it (all three above), must
   fit one instance of its smallest allowed type. Only a warning: the other pools and the platform
   work, and a raised quota takes effect without another apply.

Takes ``config`` (PreflightConfig), ``name``, ``region``, the ``network`` and ``cluster`` layers, and
the cluster and Karpenter configs. Exposes ``checks`` (the ``check`` blocks, which the stack writes:
Terraform keeps them at the top level, like import blocks).
"""

from __future__ import annotations

from cdktf import Postcondition, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_availability_zones import DataAwsAvailabilityZones
from cdktf_cdktf_provider_aws.data_aws_ec2_instance_type import DataAwsEc2InstanceType
from cdktf_cdktf_provider_aws.data_aws_eips import DataAwsEips
from cdktf_cdktf_provider_aws.data_aws_iam_roles import DataAwsIamRoles
from cdktf_cdktf_provider_aws.data_aws_servicequotas_service_quota import DataAwsServicequotasServiceQuota
from constructs import Construct

from constructs.cluster import Cluster
from constructs.network import Network
from model import preflight as knowledge
from model.cluster import CONTROLLER_MAX_UNAVAILABLE, ClusterConfig
from model.karpenter import KarpenterConfig
from model.network import ADDRESSES_PER_VCPU
from model.preflight import PreflightConfig

QUOTA_FIX = ("request an increase in the Service Quotas console (Amazon EC2, {code}) or with `aws service-quotas "
             "request-service-quota-increase --service-code ec2 --quota-code {code} --region {region} "
             "--desired-value {value}`")


def refuse(condition: str, message: str) -> TerraformResourceLifecycle:
    """A data source lifecycle whose postcondition fails the plan with ``message`` (HCL, may use self)."""
    return TerraformResourceLifecycle(postcondition=[Postcondition(condition=f"${{{condition}}}",
                                                                   error_message=message)])


class Preflight(Construct):
    """Plan-time reads of the account (zones, Spot role, quotas) that refuse or warn before anything is created."""

    def __init__(self, scope: Construct, id_: str, *, config: PreflightConfig, name: str, region: str,
                 network: Network, cluster: Cluster, cluster_config: ClusterConfig,
                 karpenter_config: KarpenterConfig) -> None:
        super().__init__(scope, id_)
        self.checks: dict[str, dict] = {}
        self._quotas: dict[str, DataAwsServicequotasServiceQuota] = {}

        # 1. zones
        blocked = ", ".join(f'"{z}"' for z in knowledge.NO_CONTROL_PLANE_ZONE_IDS)
        used = ", ".join(f'"{z}"' for z in network.zones)
        ids = "zipmap(self.names, self.zone_ids)"
        others = (f'join(", ", [for n, id in {ids} : n if !contains([{blocked}], id) && !contains([{used}], n)])')
        # availability zones only: an account also lists the Local and Wavelength Zones it opted in to,
        # which hold no control plane and offer few instance types (the hint must never propose one)
        zones = DataAwsAvailabilityZones(self, "zones",
                                         filter=[{"name": "zone-type", "values": ["availability-zone"]}])
        conditions = []
        if network.brought:  # the zones of the network's own subnets, read at plan
            fix = f"list private subnets of other zones of {region} (${{{others}}}); then plan again."
            for sid, az in network.subnet_zones.items():
                conditions.append(Postcondition(
                    condition=f'${{!contains([{blocked}], lookup({ids}, "{az}", ""))}}',
                    error_message=f"network.existing.private_subnet_ids: {sid} is in {az}, zone id "
                                  f'${{lookup({ids}, "{az}", "")}} in this account, where EKS cannot place a control '
                                  f"plane (CreateCluster would fail); {fix}"))
            conditions.append(Postcondition(
                condition=f"${{length(distinct([{used}])) >= 2}}",
                error_message=f"network.existing.private_subnet_ids: every one is in ${{join(\", \", distinct([{used}]))}}; "
                              f"EKS needs subnets in at least two zones; add a private subnet of another zone of "
                              f"{region}, then plan again."))
        else:
            fix = (f"list network.availability_zones explicitly, without it, from the other zones of {region}: "
                   f"${{{others}}}; then plan again.")
            for az in network.zones:
                conditions += [
                    Postcondition(condition=f'${{contains(self.names, "{az}")}}',
                                  error_message=f"network: the cluster's subnets would use {az}, which is not an "
                                                f"available zone of {region} in this account; {fix}"),
                    Postcondition(condition=f'${{!contains([{blocked}], lookup({ids}, "{az}", ""))}}',
                                  error_message=f"network: the cluster's subnets would use {az}, zone id "
                                                f'${{lookup({ids}, "{az}", "")}} in this account, where EKS cannot '
                                                "place a control plane (CreateCluster would fail after the whole "
                                                f"network is built); {fix}"),
                ]
        zones.lifecycle = TerraformResourceLifecycle(postcondition=conditions)
        if network.brought:
            self._free_addresses(network, karpenter_config, region)

        # 2. Spot service-linked role
        spot_pools = sorted(p for p, pool in karpenter_config.nodepools.items() if "spot" in pool.capacity_types)
        if spot_pools and config.spot_role:
            role_fix = (f"run `npx cdktf deploy state-bootstrap` (it creates the role once per account) or `aws iam "
                        f"create-service-linked-role --aws-service-name {knowledge.SPOT_SERVICE}`")
            what = (f"the account has no Spot service-linked role ({knowledge.SPOT_ROLE_NAME}), so Karpenter's spot "
                    f"launches for karpenter.nodepools {', '.join(spot_pools)} fail "
                    "(AuthFailure.ServiceLinkedRoleCreationNotPermitted) and the pools run on-demand only")
            roles = DataAwsIamRoles(self, "spot-role", path_prefix=knowledge.SPOT_ROLE_PATH, lifecycle=refuse(
                f"length(self.names) > 0 || {cluster.exists_expression}",
                f"preflight: {what}; {role_fix}, then plan again."))
            self._warn("spot_service_linked_role", f"length({roles.fqn}.names) > 0",
                       f"preflight: {what}; {role_fix}.")

        if not config.quotas:
            return

        # 3. Elastic IPs: the NAT gateways' plus those allocated by anything else (an existing network: none)
        planned = len(network.nat_eip_names)
        if planned:
            self._elastic_ips(network, planned, region)
        self._vcpus(network, cluster, cluster_config, karpenter_config, config, region)

    def _elastic_ips(self, network: Network, planned: int, region: str) -> None:
        own = DataAwsEips(self, "own-eips", filter=[{"name": "tag:Name", "values": network.nat_eip_names}])
        allocated = DataAwsEips(self, "allocated-eips")
        others_count = f"(length({allocated.fqn}.allocation_ids) - length({own.fqn}.allocation_ids))"
        nat_words = "one shared NAT gateway" if planned == 1 else f"a NAT gateway in each of its {planned} zones"
        fewer = "" if planned == 1 else ", or set network.single_nat_gateway: true (one NAT gateway, not HA)"
        self._quota(knowledge.ELASTIC_IP_QUOTA, refuse(
            f"{others_count} + {planned} <= self.value",
            f"network: {nat_words} needs {planned} Elastic IP{'s' * (planned > 1)}; ${{{others_count}}} other "
            f"addresses are allocated in {region} and the account's Elastic IP quota there is ${{self.value}} "
            f"(Service Quotas, Amazon EC2, {knowledge.ELASTIC_IP_QUOTA}); release unused Elastic IPs, "
            + QUOTA_FIX.format(code=knowledge.ELASTIC_IP_QUOTA, region=region,
                               value=f"${{{others_count} + {planned}}}") + f"{fewer}; then plan again."))

    def _free_addresses(self, network: Network, karpenter_config: KarpenterConfig, region: str) -> None:
        """Warn when the existing private subnets' free addresses cannot hold the pools at their vCPU limits."""
        limit = sum(pool.cpu_limit for pool in karpenter_config.nodepools.values())
        need = limit * ADDRESSES_PER_VCPU
        free = "sum([" + ", ".join(f"{r.fqn}.available_ip_address_count" for r in network.private_subnet_reads) + "])"
        self._warn("existing_subnet_addresses", f"{free} >= {need}",
                   f"network.existing.private_subnet_ids: ${{{free}}} free addresses in {region}, fewer than the "
                   f"{need} the pools need at their limits (karpenter.nodepools cpu_limit {limit} vCPUs in all, "
                   f"{ADDRESSES_PER_VCPU} pod addresses a vCPU at least, one each from the VPC CNI): Karpenter's nodes "
                   "would run out of pod addresses first; ask the network's owner for larger or more private subnets, "
                   "or lower the pools' cpu_limit.")

    def _vcpus(self, network: Network, cluster: Cluster, cluster_config: ClusterConfig,
               karpenter_config: KarpenterConfig, config: PreflightConfig, region: str) -> None:
        # 4. controller nodes: refused when the group cannot even roll, warned about when a replacement
        # group would not fit (DESIGN fact 26: the quota counts the stack's own nodes)
        node_type = cluster_config.node_instance_type
        cls = knowledge.vcpu_class(knowledge.category(node_type.split(".")[0]))
        reserve = knowledge.controller_reservation(cluster_config.node_desired_size, len(set(network.zones)),
                                                   CONTROLLER_MAX_UNAVAILABLE)
        reserved: dict[str, str] = {}  # quota code -> HCL: the vCPUs the controller nodes may take of it
        pool_needs = [need for pool_name, pool in karpenter_config.nodepools.items()
                      for need in knowledge.pool_needs(pool_name, pool.capacity_types, pool.instance_categories,
                                                       pool.instance_families, pool.architectures)]
        if cls:
            quota = self._quota(cls.on_demand)
            count = reserve.desired
            nodes = f"{count} controller node{'s' * (count > 1)} of {node_type}"
            quota_words = (f"the account's \"{cls.quota_name('on-demand')}\" quota of ${{{quota.fqn}.value}} vCPUs in "
                           f"{region} ({cls.on_demand})")
            controller = DataAwsEc2InstanceType(self, "controller-type", instance_type=node_type)
            vcpus = f"{controller.fqn}.default_vcpus"
            largest_pool = max((n.vcpus for n in pool_needs if n.code == cls.on_demand), default=0)
            # what fits everything: the controller nodes at their worst and the largest smallest pool instance
            def fix(cpus: str) -> str:
                return QUOTA_FIX.format(code=cls.on_demand, region=region,
                                        value=f"${{{reserve.total} * {cpus} + {largest_pool}}}")
            surge_words = (f"the {reserve.surge} EKS adds while it updates the group (twice its {len(set(network.zones))} "
                           "zones: every karpenter.ami_alias or cluster.version change)")
            def roll_words(cpus: str) -> str:
                roll = f"{reserve.to_roll} * {cpus}"
                return (f"cluster: {nodes} (cluster.node_desired_size, cluster.node_instance_type) plus {surge_words} "
                        f"need ${{{roll}}} vCPUs, above {quota_words}: the node group would not come up, or its first "
                        f"update would fail (VcpuLimitExceeded) and leave it Failed; {fix(cpus)} (room for a "
                        "replacement group and the smallest pool instance too), or choose a smaller "
                        "cluster.node_instance_type")
            # refused before the cluster exists; for a running one a warning (its plans, an urgent fix
            # included, must not wait for a quota request)
            controller.lifecycle = refuse(
                f"{reserve.to_roll} * self.default_vcpus <= {quota.fqn}.value || {cluster.exists_expression}",
                roll_words("self.default_vcpus") + "; then plan again.")
            self._warn("controller_nodes_update", f"{reserve.to_roll} * {vcpus} <= {quota.fqn}.value",
                       roll_words(vcpus) + ".")
            total = f"{reserve.total} * {vcpus}"
            self._warn(
                "controller_nodes_replacement", f"{total} <= {quota.fqn}.value",
                f"cluster: a change that replaces the controller node group (cluster.node_instance_type, "
                f"node_disk_size_gb) runs a second group of {count} beside it until the old one is drained "
                f"(create_before_destroy): with {surge_words} that is ${{{total}}} vCPUs, above {quota_words}, so "
                f"the new group would not come up; {fix(vcpus)}.")
            reserved[cls.on_demand] = total

        # 5. pools: warned about, in what the controller nodes leave of each quota
        if not config.pool_vcpu_warnings:
            return
        for need in pool_needs:
            quota = self._quota(need.code)
            taken = reserved.get(need.code)
            left = f"({quota.fqn}.value - {taken})" if taken else f"{quota.fqn}.value"
            pool = karpenter_config.nodepools[need.pool]
            value = max(pool.cpu_limit, need.vcpus)
            share = (f"; the controller nodes may take ${{{taken}}} of it (desired size, update surge, a replacement "
                     f"group), leaving ${{{left}}}") if taken else ""
            self._warn(
                f"nodepool_{need.pool}_{need.capacity_type}_{need.code}", f"{left} >= {need.vcpus}",
                f"karpenter.nodepools.{need.pool}: the account's \"{need.vcpu_class.quota_name(need.capacity_type)}\" "
                f"quota in {region} is ${{{quota.fqn}.value}} vCPUs ({need.code}){share}, below the {need.vcpus} vCPUs "
                f"of its smallest allowed {need.what} instance, so Karpenter launches no {need.capacity_type} node of "
                "that kind for this pool; "
                + QUOTA_FIX.format(code=need.code, region=region,
                                   value=f"${{{taken} + {value}}}" if taken else value)
                + f" (the pool's cpu_limit{' beside the controller nodes' if taken else ''}), or set "
                "preflight.pool_vcpu_warnings: false to silence this.")

    def _quota(self, code: str, lifecycle: TerraformResourceLifecycle | None = None) -> DataAwsServicequotasServiceQuota:
        """The EC2 quota ``code`` in this region, read once."""
        if code not in self._quotas:
            self._quotas[code] = DataAwsServicequotasServiceQuota(self, f"quota-{code}", service_code="ec2",
                                                                   quota_code=code, lifecycle=lifecycle)
        elif lifecycle is not None:
            self._quotas[code].lifecycle = lifecycle
        return self._quotas[code]

    def _warn(self, name: str, condition: str, message: str) -> None:
        """A ``check`` block: Terraform prints ``message`` as a warning at plan when ``condition`` is false."""
        self.checks[name] = {"assert": [{"condition": f"${{{condition}}}", "error_message": message}]}
