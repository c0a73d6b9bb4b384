"""Cluster layer: the EKS control plane, IRSA, and the nodes Karpenter itself runs on.

Creates:
- the control-plane log group ``/aws/eks/<name>/cluster`` (configured retention) *before* the
  cluster, so EKS does not create an unmanaged, never-expiring one first. It survives a destroy
  (``skip_destroy``: audit logs outlive the cluster for their retention), so it is encrypted with the
  account's kept-logs KMS key (state-bootstrap), which no environment's destroy removes, not with the
  stack's key (a destroy schedules that for deletion, and the kept logs would become unreadable); an
  ``import`` block adopts an existing group of that name, kept or re-created by EKS after a destroy;
  without it the next apply of the environment fails with "already exists";
- the **EKS cluster**: private + public endpoint (public limited to ``public_access_cidrs``), nodes
  in the private subnets, all five control-plane log types, secrets envelope-encrypted with the
  stack's KMS key, ``access_config`` with ``authentication_mode`` ``API`` for a new cluster (access
  entries only; an existing cluster keeps the mode it runs) and
  ``bootstrap_cluster_creator_admin_permissions`` (whoever applies must reach the API in the same
  apply to install Karpenter), and the configured ``upgrade_policy`` (EXTENDED or STANDARD support).
  A plan-time precondition reads the running cluster's version (``data.aws_eks_clusters`` /
  ``aws_eks_cluster``, nothing on a first apply) and refuses a jump of more than one minor version
  or a downgrade, naming both versions: EKS would refuse it half-way through the apply;
- an **access entry** with ``AmazonEKSClusterAdminPolicy`` (cluster scope) for each of
  ``admin_principal_arns`` and each deployer role the state-bootstrap stack made (but the creator):
  only the creator can reach a new cluster, and the next plan run by an operator, CI or Terraform
  Cloud role would fail on every Kubernetes and Helm resource;
- the **OIDC provider** for IRSA (``client_id_list = ["sts.amazonaws.com"]``; aws provider 5.x
  fetches the thumbprint itself, so no TLS provider);
- a small managed **controller node group** (no general node group: Karpenter provisions every
  workload node). It hosts Karpenter and CoreDNS, which must not run on nodes Karpenter manages:
  label ``karpenter.sh/controller=true``, taint ``CriticalAddonsOnly=true:NoSchedule``, AL2023. Its
  ``version`` is the cluster's, so it follows every control-plane step (EKS refuses the next step
  while a managed node group lags behind);
- the **access entry** (``EC2_LINUX``) for the Karpenter node role: without it Karpenter's nodes
  never join;
- the discovery tag ``karpenter.sh/discovery=<name>`` on the EKS-created cluster security group
  (``aws_ec2_tag``): the EC2NodeClass selects its security group by that tag;
- per ``private_access_cidrs`` network an HTTPS (443) ingress rule on that security group, which the
  private endpoint's interfaces carry: how a VPN, a peered network or a Terraform Cloud agent's subnet
  reaches a cluster whose public endpoint is off. With ``remote_runners`` (the cloud backend) and the
  public endpoint off, a ``check`` block warns at every plan that only an agent pool can plan it.

Takes ``config`` (ClusterConfig), ``name``, ``region``, the ``network`` and ``iam`` layers, the KMS
key ARN and ``remote_runners``. Exposes ``cluster`` and its ``name``/``version``/``endpoint``/``arn``/``ca_data``, ``oidc_provider_arn``,
``oidc_issuer_url``, ``oidc_issuer_host``, ``node_group``, ``node_access_entry``, ``admin_access``
(the admins' entries and policy associations: in-cluster resources keep them until they are gone,
or a destroy run by an admin loses its access half-way), ``discovery_tag``,
``security_group_id``, ``private_access_rules``, ``exists_expression`` (HCL: whether the cluster runs already,
known at plan), ``kubeconfig`` (exec-based, holds no secret), ``imports`` (the log group's import block) and
``checks`` (``check`` blocks: the kept-logs key, the private endpoint); the stack writes both: Terraform
keeps them at the top level.
"""

from __future__ import annotations

import json

from cdktf import DataResource, Fn, Op, Postcondition, Precondition, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_cloudwatch_log_groups import DataAwsCloudwatchLogGroups
from cdktf_cdktf_provider_aws.data_aws_ec2_instance_type_offerings import DataAwsEc2InstanceTypeOfferings
from cdktf_cdktf_provider_aws.data_aws_eks_cluster import DataAwsEksCluster
from cdktf_cdktf_provider_aws.data_aws_eks_clusters import DataAwsEksClusters
from cdktf_cdktf_provider_aws.data_aws_iam_session_context import DataAwsIamSessionContext
from cdktf_cdktf_provider_aws.data_aws_ssm_parameters_by_path import DataAwsSsmParametersByPath
from cdktf_cdktf_provider_aws.ec2_tag import Ec2Tag
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.eks_access_policy_association import EksAccessPolicyAssociation
from cdktf_cdktf_provider_aws.eks_cluster import EksCluster
from cdktf_cdktf_provider_aws.eks_node_group import EksNodeGroup
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from constructs.iam import Iam
from constructs.network import Network
from model import names
from model.cluster import (ADMIN_POLICY, CONTROLLER_LABEL, CONTROLLER_MAX_UNAVAILABLE, CONTROLLER_TAINT,
                           PRIVATE_ENDPOINT_WARNING, ClusterConfig, admin_key, cidr_key)

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def kubeconfig(*, name: str, region: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig (JSON, which is valid YAML) using ``aws eks get-token``: no secret inside."""
    return Fn.jsonencode({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        }}}],
    })


class Cluster(Construct):
    """EKS cluster, OIDC provider, controller node group, node access entry, SG discovery tag."""

    def __init__(self, scope: Construct, id_: str, *, config: ClusterConfig, name: str, region: str, network: Network,
                 iam: Iam, kms_key_arn: str, release_version: str, remote_runners: bool = False,
                 deployer_roles: dict[str, str] | None = None) -> None:
        super().__init__(scope, id_)

        # The running cluster's version, if this cluster exists already (read at plan): EKS moves one
        # minor version per update and never down, so refuse anything else at plan, with the numbers.
        clusters = DataAwsEksClusters(self, "existing-clusters")
        exists = Fn.contains(clusters.names, name)
        # HCL: whether the cluster runs already, known at plan (constructs/preflight.py's conditions)
        self.exists_expression = f'contains({clusters.fqn}.names, "{name}")'
        running = DataAwsEksCluster(self, "running", name=name, count=Token.as_number(Fn.conditional(exists, 1, 0)))
        # no running cluster: compare the target with itself (HCL's || does not guard evaluation errors)
        running_version = (f"coalesce(one(data.aws_eks_cluster.{running.friendly_unique_id}[*].version), "
                           f'"{config.version}")')
        running_minor = f'tonumber(split(".", {running_version})[1])'
        target_minor = int(config.version.split(".")[1])
        one_step = Precondition(
            condition=f"${{{running_minor} <= {target_minor} && {target_minor} <= {running_minor} + 1}}",
            error_message=f"cluster.version {config.version} cannot follow the running cluster's "
                          f"${{{running_version}}}: EKS moves one minor version per update and never down. Set "
                          "cluster.version to the running version or the next minor, apply, and step on from there "
                          "(if AWS upgraded the cluster by itself, set cluster.version to the version it runs).")

        log_group_name = names.derived("cluster_log_group", name)
        # The group outlives a destroy, so its key must too (DESIGN fact 25): CloudWatch Logs needs the key
        # events were ingested under to read them, and a destroy schedules the stack's own key for
        # deletion. The account's kept-logs key (the state-bootstrap stack's, never destroyed) is found
        # at plan through its SSM parameter (a literal path: read at plan; a missing one is an empty
        # list, not an error). Missing: refused before the cluster exists; a running cluster keeps the
        # stack's key with a warning on every plan (an urgent fix must not wait for the bootstrap).
        kept = DataAwsSsmParametersByPath(self, "kept-logs-key", path=names.KEPT_LOGS_PARAMETER_PATH)
        bootstrap_fix = ("run `npx cdktf deploy state-bootstrap` (once per account: it creates the key for every "
                         "environment's region and never destroys it)")
        kept_words = (f"cluster: the control-plane log group {log_group_name} outlives a destroy for its retention "
                      f"({config.log_retention_days} days), so its KMS key must too: the account's kept-logs key "
                      f"(SSM parameter {names.KEPT_LOGS_PARAMETER} in {region}) is missing")
        kept.lifecycle = TerraformResourceLifecycle(postcondition=[Postcondition(
            condition=f"${{length(self.names) > 0 || {self.exists_expression}}}",
            error_message=f"{kept_words}; {bootstrap_fix}, then plan again.")])
        self.checks: dict[str, dict] = {"kept_logs_key": {"assert": [{
            "condition": f"${{length({kept.fqn}.names) > 0}}",
            "error_message": f"{kept_words}, so the group stays encrypted with this environment's key, which a destroy "
                             f"schedules for deletion (its logs then become unreadable); {bootstrap_fix}; the next "
                             "apply moves the group to it in place (docs/upgrading.md, Kept logs).",
        }]}}
        log_key = Token.as_string(Fn.conditional(Op.gte(Fn.length_of(kept.names), 1),  # (a literal 0 is lost)
                                                 Fn.nonsensitive(Fn.element(kept.values, 0)), kms_key_arn))
        logs = CloudwatchLogGroup(self, "log-group", name=log_group_name, retention_in_days=config.log_retention_days,
                                  kms_key_id=log_key, skip_destroy=True)
        # EKS re-creates the group from late deliveries after its cluster is deleted (no retention, no
        # KMS), and the group outlives a destroy on purpose (skip_destroy); either way the next apply
        # adopts the existing group instead of failing "already exists". The import runs only when a
        # group of exactly that name exists (the prefix also matches e.g. <name>/cluster-audit) and
        # is a no-op once it is in state. The lookup depends on the literal name only: anything
        # unknown at plan would make the import's for_each unknown, which Terraform refuses.
        groups = DataAwsCloudwatchLogGroups(self, "existing-log-group", log_group_name_prefix=log_group_name)
        self.imports: list[dict[str, str]] = [{
            "for_each": f'${{toset([for n in {groups.fqn}.log_group_names : n if n == "{log_group_name}"])}}',
            "to": f"{logs.terraform_resource_type}.{logs.friendly_unique_id}",
            "id": "${each.value}",
        }]

        self.cluster = EksCluster(
            self, "cluster",
            name=name,
            version=config.version,
            upgrade_policy={"support_type": config.support_type},
            role_arn=iam.cluster_role.arn,
            vpc_config={
                "subnet_ids": network.private_subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": config.endpoint_public_access,
                "public_access_cidrs": list(config.public_access_cidrs),
            },
            enabled_cluster_log_types=list(LOG_TYPES),
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": kms_key_arn}},
            access_config={
                # API for a new cluster (access entries only; the aws-auth ConfigMap is unused here); an
                # existing cluster keeps the mode it runs (EKS moves it one way only, to API, and an
                # older cluster may still carry hand-made aws-auth mappings).
                "authentication_mode": (f"${{coalesce(one(data.aws_eks_cluster.{running.friendly_unique_id}[*]"
                                        '.access_config[0].authentication_mode), "API")}'),
                "bootstrap_cluster_creator_admin_permissions": True,
            },
            depends_on=[logs, *iam.cluster_role_attachments],
            lifecycle=TerraformResourceLifecycle(precondition=[one_step]),
        )
        self.name: str = self.cluster.name
        self.version: str = config.version  # the target version, known at plan
        self.arn: str = self.cluster.arn
        self.endpoint: str = self.cluster.endpoint
        self.ca_data: str = self.cluster.certificate_authority.get(0).data
        self.security_group_id: str = self.cluster.vpc_config.cluster_security_group_id
        self.oidc_issuer_url: str = self.cluster.identity.get(0).oidc.get(0).issuer

        self.oidc_provider = IamOpenidConnectProvider(self, "oidc-provider", url=self.oidc_issuer_url,
                                                      client_id_list=["sts.amazonaws.com"])
        self.oidc_provider_arn: str = self.oidc_provider.arn
        # From the provider, not the cluster: a version update leaves the provider untouched, so the
        # IRSA trust documents stay known at plan instead of showing every role as changing.
        self.oidc_issuer_host: str = Fn.replace(self.oidc_provider.url, "https://", "")

        # EKS refuses a node group whose instance type a subnet's zone does not offer, after the network
        # and the control plane exist (~15 min in): refuse it at plan, from the region's own offerings.
        zones = json.dumps(list(network.zones))
        missing = f"setsubtract({zones}, self.locations)"
        DataAwsEc2InstanceTypeOfferings(
            self, "node-type-offerings", location_type="availability-zone",
            filter=[{"name": "instance-type", "values": [config.node_instance_type]},
                    {"name": "location", "values": list(network.zones)}],
            lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
                condition=f"${{length({missing}) == 0}}",
                error_message=f"cluster.node_instance_type: {config.node_instance_type} is not offered in "
                              f"${{join(\", \", {missing})}}; pick an instance type every zone of the network offers "
                              f"(aws ec2 describe-instance-type-offerings --location-type availability-zone), or other zones",
            )]))

        # Identity: a name *prefix* and create_before_destroy. EKS replaces a node group whose instance
        # types, disk size, AMI type or subnets change (DESIGN fact 20); with a fixed name the old group
        # (CoreDNS, Karpenter, the EBS CSI controller) would go first and the whole cluster would lose
        # DNS and provisioning until the new one is up. Here the new group joins first, EKS drains the
        # old one (evicting with the PodDisruptionBudgets, forcibly after EKS's drain timeout), then it goes.
        # create_before_destroy also applies to what the group depends on (Terraform implies it): a
        # forced replacement of the cluster, a subnet or a fixed-name role would now fail at its create
        # ("already exists") instead of deleting the running one first; none of them is replaced by a
        # change the config allows (the identity latch refuses those, constructs/network.py). ``release_version`` is the AMI
        # release of karpenter.ami_alias, so one bump rolls these nodes too (in place, rolling).
        self.node_group = EksNodeGroup(
            self, "controller-nodes",
            cluster_name=self.cluster.name,
            node_group_name_prefix=names.CONTROLLER_NODE_GROUP_PREFIX,
            version=self.cluster.version,  # follows every control-plane step (EKS refuses the next one otherwise)
            release_version=release_version or None,
            node_role_arn=iam.controller_node_role.arn,
            subnet_ids=network.private_subnet_ids,
            instance_types=[config.node_instance_type],
            ami_type=config.node_ami_type,
            disk_size=config.node_disk_size_gb,
            scaling_config={"desired_size": config.node_desired_size, "min_size": config.node_min_size,
                            "max_size": config.node_max_size},
            update_config={"max_unavailable": CONTROLLER_MAX_UNAVAILABLE},
            labels=dict(CONTROLLER_LABEL),
            taint=[dict(CONTROLLER_TAINT)],
            depends_on=iam.controller_node_role_attachments,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

        self.node_access_entry = EksAccessEntry(self, "karpenter-node-access", cluster_name=self.cluster.name,
                                                principal_arn=iam.node_role.arn, type="EC2_LINUX")

        self.admin_access: list[EksAccessEntry | EksAccessPolicyAssociation] = []
        if config.admin_principal_arns or deployer_roles:
            # The creator's entry exists already (bootstrap_cluster_creator_admin_permissions): a second
            # CreateAccessEntry for it fails (ResourceInUseException). Refuse that at plan, by name,
            # while the cluster is being created (later, a listed admin runs plans as itself).
            caller = DataAwsIamSessionContext(self, "caller", arn=iam.aws.caller_arn)
        for arn in config.admin_principal_arns:
            self._admin(f"admin-{admin_key(arn)}", arn, iam.aws.partition,
                        lifecycle=TerraformResourceLifecycle(precondition=[Precondition(
                            condition=Op.or_(exists, Op.neq(caller.issuer_arn, arn)),
                            error_message=f"cluster.admin_principal_arns lists {arn}, the identity running this "
                                          "apply: EKS made the cluster's creator an admin already and refuses a second "
                                          "access entry for it. Remove it from the list (keep it for the other roles).",
                        )]))
        if deployer_roles:
            self._deployer_access(deployer_roles, caller=caller, exists=exists, partition=iam.aws.partition)

        self.discovery_tag = Ec2Tag(self, "cluster-sg-discovery-tag", resource_id=self.security_group_id,
                                    key="karpenter.sh/discovery", value=name)

        # The private endpoint answers on the cluster security group's ENIs in the VPC: a runner outside the
        # VPC's own nodes (a peered or VPN network, a Terraform Cloud agent's subnet) needs HTTPS in. One rule
        # per network, keyed by the network, so adding or removing one touches only its rule.
        self.private_access_rules = [
            VpcSecurityGroupIngressRule(
                self, f"private-api-{cidr_key(cidr)}", security_group_id=self.security_group_id, cidr_ipv4=cidr,
                ip_protocol="tcp", from_port=443, to_port=443,
                description="Kubernetes API (private endpoint) from cluster.private_access_cidrs")
            for cidr in config.private_access_cidrs]
        # Terraform Cloud's remote runners are outside every VPC: said at every plan, in the run's output (a
        # check block warns, it never stops a run; its condition is the cluster's planned public access, false).
        if remote_runners and not config.endpoint_public_access:
            public = f"${{{self.cluster.fqn}.vpc_config[0].endpoint_public_access}}"
            self.checks["private-endpoint"] = {"assert": [{"condition": public,
                                                           "error_message": PRIVATE_ENDPOINT_WARNING + "."}]}

        self.kubeconfig: str = kubeconfig(name=name, region=region, endpoint=self.endpoint, ca_data=self.ca_data)

    def _admin(self, key: str, arn: str, partition: str, **entry: object) -> None:
        """An access entry for ``arn`` with AmazonEKSClusterAdminPolicy (cluster scope), ids ``key`` and
        ``<key>-policy``; ``entry``: the entry's lifecycle or count (a counted pair shares the count)."""
        created = EksAccessEntry(self, key, cluster_name=self.cluster.name, principal_arn=arn, type="STANDARD",
                                 **entry)
        counted = "count" in entry  # a counted entry has no single address to reference: depend on it
        self.admin_access.append(created)
        self.admin_access.append(EksAccessPolicyAssociation(
            self, f"{key}-policy", cluster_name=self.cluster.name,
            principal_arn=arn if counted else created.principal_arn,
            policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/{ADMIN_POLICY}", access_scope={"type": "cluster"},
            **({"count": entry["count"], "depends_on": [created]} if counted else {})))

    def _deployer_access(self, roles: dict[str, str], *, caller: DataAwsIamSessionContext, exists: str,
                         partition: str) -> None:
        """Cluster admin for each role the state-bootstrap stack made for this environment
        (``{kind: role ARN}``), except the one that created the cluster: EKS made it an admin already
        and refuses a second entry for it. Which one did is latched when the cluster is created
        (``terraform_data.creator``, never updated: ``ignore_changes``), so the entries stay put on every
        later plan, whoever runs it; a latch added to a running cluster records no creator (the
        bootstrap's roles did not exist when it was created). The plan-phase role administers too:
        Terraform Cloud applies with the cluster token its plan read (DESIGN fact 19)."""
        creator = DataResource(self, "creator", input={"arn": Fn.conditional(exists, "", caller.issuer_arn)},
                               lifecycle=TerraformResourceLifecycle(ignore_changes=["input"]))
        for kind, arn in roles.items():
            self._admin(f"deployer-{kind.replace('_', '-')}", arn, partition,
                        count=Token.as_number(Fn.conditional(Op.eq(creator.get_string_attribute("input.arn"), arn), 0, 1)))
