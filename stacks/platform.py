"""PlatformStack: one environment's whole platform in one Terraform configuration.

Creates the backend and the providers from config, the shared KMS key, composes the layers
(network -> IAM -> cluster -> add-ons, Karpenter) and declares the seed's outputs. Constructs never create
providers or backends; this module does.
"""

from __future__ import annotations

import tempfile

from stacks import bootstrap

bootstrap.prepare()  # before any layer or provider import: see stacks/bootstrap.py

from cdktf import (App, CloudBackend, DataResource, Fn, LocalBackend, NamedCloudWorkspace, S3Backend, TerraformOutput,
                   TerraformResourceLifecycle, TerraformStack)
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_eks_cluster_auth import DataAwsEksClusterAuth
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider, KubernetesProviderExec
from constructs import Construct

from constructs.addons import Addons
from constructs.cluster import Cluster
from constructs.iam import Iam
from constructs.karpenter import Karpenter
from constructs.network import Network
from constructs.policy import AwsContext, policy_document
from constructs.teardown import Teardown
from constructs.preflight import Preflight
from model import names
from model.tags import STACK_TAG_KEYS
from stacks.config import EmulatorConfig, StackConfig, state_buckets


REQUIRED_TERRAFORM = ">= 1.10.1"


class PlatformStack(TerraformStack):
    """VPC + EKS + IAM + Karpenter for one environment (``environment`` names the stack)."""

    def __init__(self, scope: Construct, environment: str, *, config: StackConfig) -> None:
        super().__init__(scope, environment)
        self.environment = environment
        self.config = config
        self.tags = {"Environment": environment, "ManagedBy": "cdktf", "Cluster": config.name, **config.tags}
        # 1.10: the S3 backend's native lock file; 1.10.1: an import block with for_each onto a
        # resource without one (the control-plane log group's adoption, constructs/cluster.py).
        self.add_override("terraform.required_version", REQUIRED_TERRAFORM)
        self._backend(environment, config)
        self._aws_provider(config)

        account = DataAwsCallerIdentity(self, "account")
        partition = DataAwsPartition(self, "partition")
        aws = AwsContext(account_id=account.account_id, partition=partition.partition, region=config.region,
                         caller_arn=account.arn)
        self.key = self._kms_key(config, aws)

        self.network = Network(self, "network", config=config.network, name=config.name, aws=aws,
                               kms_key_arn=self.key.arn)
        self.iam = Iam(self, "iam", name=config.name, aws=aws, kms_key_arn=self.key.arn)
        self.cluster = Cluster(self, "cluster", config=config.cluster, name=config.name, region=config.region,
                               network=self.network, iam=self.iam, kms_key_arn=self.key.arn,
                               release_version=config.node_release_version,
                               remote_runners=config.backend.type == "cloud",
                               deployer_roles=self._deployer_roles(config, aws))
        self.add_override("import", self.cluster.imports)
        self.preflight = Preflight(self, "preflight", config=config.preflight, name=config.name, region=config.region,
                                   network=self.network, cluster=self.cluster, cluster_config=config.cluster,
                                   karpenter_config=config.karpenter)
        checks = {**self.preflight.checks, **self.cluster.checks}
        if checks:
            self.add_override("check", checks)
        self._kubernetes_providers(config)
        self.addons = Addons(self, "addons", name=config.name, network=self.network, cluster=self.cluster,
                             iam=self.iam, nvidia_device_plugin=config.karpenter.may_launch_nvidia_gpus,
                             versions=config.addon_versions, pod_identity=config.pod_identity)
        # The nodes Karpenter launches carry the identity tags and karpenter.node_tags only: the
        # EC2NodeClass's spec.tags is in Karpenter's drift hash, so an organisation tag edit would
        # otherwise replace every node (DESIGN fact 21).
        node_tags = {k: self.tags[k] for k in STACK_TAG_KEYS} | dict(config.karpenter.node_tags)
        self.karpenter = Karpenter(self, "karpenter", config=config.karpenter, name=config.name,
                                   replicas=config.karpenter_replicas, tags=node_tags, network=self.network,
                                   cluster=self.cluster, iam=self.iam, addons=self.addons,
                                   wait_for_node_cleanup=config.kubernetes_auth_mode == "exec",
                                   pod_identity=config.pod_identity)
        self.teardown: Teardown | None = None
        if config.kubernetes_auth_mode == "exec":  # needs the aws CLI and kubectl where Terraform runs
            in_cluster = [self.karpenter.nodepools_release, self.addons.storage_class,
                          *([self.addons.device_plugin] if self.addons.device_plugin else [])]
            self.teardown = Teardown(self, "teardown", name=config.name, region=config.region, network=self.network,
                                     cluster=self.cluster, in_cluster=in_cluster)

        self._outputs()

    # ------------------------------------------------------------------ backend / providers

    def _backend(self, environment: str, config: StackConfig) -> None:
        backend = config.backend
        if backend.type == "s3":
            S3Backend(self, bucket=backend.bucket, key=backend.key or f"{environment}/terraform.tfstate",
                      region=backend.region or config.region, encrypt=backend.encrypt)
            # cdktf 0.21's S3Backend predates Terraform's native S3 locking (1.10+): add it raw.
            self.add_override("terraform.backend.s3.use_lockfile", backend.use_lockfile)
        elif backend.type == "cloud":
            CloudBackend(self, organization=backend.organization, hostname=backend.hostname,
                         workspaces=NamedCloudWorkspace(backend.workspace))
        else:
            LocalBackend(self, path=backend.path or f"terraform.{environment}.tfstate")

    def _aws_provider(self, config: StackConfig) -> None:
        # Test-only extras; the emulator's endpoint comes from AWS_ENDPOINT_URL in Terraform's environment.
        extra = config.emulator.provider_settings()
        AwsProvider(self, "aws", region=config.region, default_tags=[{"tags": self.tags}], **extra)

    def _kubernetes_providers(self, config: StackConfig) -> None:
        """Kubernetes and Helm providers for the cluster this stack creates.

        Host and CA come from the cluster resource, so both providers (and everything they manage)
        depend on the cluster, whose ``bootstrap_cluster_creator_admin_permissions`` grants the
        identity running Terraform cluster-admin. ``exec`` runs ``aws eks get-token`` on every call
        (a data-source token expires after ~15 min and breaks long first applies); ``token`` mode,
        for Terraform Cloud runners without the aws CLI, reads ``aws_eks_cluster_auth`` instead."""
        cluster = self.cluster
        # in both modes, so that switching exec -> token defers no token read (see _cluster_token)
        gate = DataResource(self, "cluster-auth-gate", input={"cluster": cluster.name, "nodes": cluster.node_group.arn},
                            lifecycle=TerraformResourceLifecycle(ignore_changes=["input"]))
        if config.kubernetes_auth_mode == "exec":
            exec_ = dict(api_version="client.authentication.k8s.io/v1beta1", command="aws",
                         args=["eks", "get-token", "--cluster-name", cluster.name, "--region", config.region,
                               "--output", "json"])
            # the kubernetes provider takes exec as a block list, the helm provider as an object
            kubernetes_auth = {"exec": [KubernetesProviderExec(**exec_)]}
            helm_auth = {"exec": HelmProviderKubernetesExec(**exec_)}
        else:
            kubernetes_auth = helm_auth = {"token": self._cluster_token(config, gate)}
        connection = dict(host=cluster.endpoint, cluster_ca_certificate=Fn.base64decode(cluster.ca_data))
        KubernetesProvider(self, "kubernetes", **connection, **kubernetes_auth)
        HelmProvider(self, "helm", kubernetes=HelmProviderKubernetes(**connection, **helm_auth))

    def _cluster_token(self, config: StackConfig, gate: DataResource) -> str:
        """The ``aws_eks_cluster_auth`` token, read at plan on every plan after the first apply.

        A data source that refers to a managed resource with changes pending is read during apply
        (DESIGN fact 19): with ``name = aws_eks_cluster.name`` any cluster change (a version step, a
        CIDR, a tag) left the providers without a token at plan, and every in-cluster resource failed
        to refresh. So the name is the literal cluster name, and the read waits only for a latch that
        changes once: ``terraform_data.cluster-auth-gate``, created with the cluster and its node group
        and never updated (``ignore_changes``). On the first apply the gate is new, so the token is
        read during apply, right after the node group is up (fresh for the in-cluster installs that
        follow); on every later plan the gate has nothing pending and the token is read at plan.
        A token lives ~15 minutes: in Terraform Cloud, apply a plan within that time of its start
        (README: Terraform Cloud). The gate exists in ``exec`` mode too, so a switch to ``token`` mode
        reads the token at plan as well."""
        return DataAwsEksClusterAuth(self, "cluster-auth", name=config.name, depends_on=[gate]).token

    @staticmethod
    def _deployer_roles(config: StackConfig, aws: AwsContext) -> dict[str, str]:
        """``{kind: ARN}`` of the state-bootstrap stack's roles for this environment (``deployer:``)."""
        return {kind: f"arn:{aws.partition}:iam::{aws.account_id}:role/{role}"
                for kind, role in config.deployer_roles.items()}

    # ------------------------------------------------------------------ shared encryption key

    def _kms_key(self, config: StackConfig, aws: AwsContext) -> KmsKey:
        """One customer-managed key (rotation on) for EKS secrets and the stack's log groups."""
        policy = policy_document(self, "kms-policy", [
            {
                "Sid": "AccountAdministers",
                "Action": "kms:*",
                "Resource": "*",
                "Principal": {"AWS": f"arn:{aws.partition}:iam::{aws.account_id}:root"},
            },
            {
                "Sid": "CloudWatchLogsEncrypts",
                # No kms:Describe*: Describe calls carry no encryption context, so under this condition
                # they were never granted. StringLike: kms:EncryptionContext:* keys are strings.
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Principal": {"Service": f"logs.{config.region}.amazonaws.com"},
                "Condition": {"StringLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{aws.partition}:logs:{config.region}:{aws.account_id}:log-group:*",
                }},
            },
        ])
        key = KmsKey(self, "kms-key", description=f"{config.name}: EKS secrets and log groups",
                     enable_key_rotation=True, deletion_window_in_days=30, policy=policy.json)
        KmsAlias(self, "kms-alias", name=names.derived("kms_alias", config.name), target_key_id=key.key_id)
        return key

    # ------------------------------------------------------------------ outputs

    def _outputs(self) -> None:
        """The seed's outputs, by their exact names."""
        net, cluster, iam = self.network, self.cluster, self.iam
        outputs = {
            "cluster_name": (cluster.name, "EKS cluster name"),
            "cluster_endpoint": (cluster.endpoint, "EKS API endpoint"),
            "cluster_arn": (cluster.arn, "EKS cluster ARN"),
            "kubeconfig": (cluster.kubeconfig, "kubeconfig (exec: aws eks get-token; holds no secret)"),
            "oidc_provider_arn": (cluster.oidc_provider_arn, "OIDC provider ARN, for more IRSA roles"),
            "oidc_provider_url": (cluster.oidc_issuer_url, "OIDC issuer URL"),
            "vpc_id": (net.vpc_id, "VPC ID"),
            "private_subnet_ids": (net.private_subnet_ids, "Private (node) subnet IDs, in AZ order"),
            "public_subnet_ids": (net.public_subnet_ids, "Public (load balancer) subnet IDs, in AZ order"),
            "karpenter_node_role_arn": (iam.node_role.arn, "IAM role of the nodes Karpenter launches"),
            "karpenter_controller_role_arn": (self.karpenter.controller_role.arn,
                                              "IAM role of the Karpenter controller (IRSA or Pod Identity)"),
            "karpenter_interruption_queue_name": (self.karpenter.queue.name, "SQS interruption queue name"),
        }
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)


def build_app(configs: dict[str, StackConfig], outdir: str | None = None, bootstrap_only: bool = False) -> App:
    """An App with one PlatformStack per environment (none when ``bootstrap_only``), plus the
    ``state-bootstrap`` stack: the S3 state bucket(s) those environments' backends name and, per region,
    the kept-logs key of their control-plane log groups."""
    from stacks.state_bucket import STACK_NAME, StateBucketStack

    app = App(outdir=outdir) if outdir else App()
    stacks = {environment: PlatformStack(app, environment, config=config)
              for environment, config in (configs.items() if not bootstrap_only else ())}
    buckets = state_buckets(configs)
    wanted = [env for env, config in configs.items() if config.deployer_roles]
    # every project with environments has one (the kept-logs key), a Terraform Cloud-only one too
    if configs:
        # the deployer policies come from the environments' JSON (built here, in a scratch app when
        # only the bootstrap is synthesized; to_terraform() costs ~0.1 s a stack)
        with tempfile.TemporaryDirectory(prefix="deployer-") as scratch_dir:
            scratch = App(outdir=scratch_dir) if bootstrap_only and wanted else None
            deployers = {env: (configs[env], (stacks.get(env) or PlatformStack(scratch, env, config=configs[env]))
                               .to_terraform()) for env in wanted}
        StateBucketStack(app, STACK_NAME, buckets=buckets, deployers=deployers,
                         log_regions=tuple(sorted({c.region for c in configs.values()})),
                         emulator=EmulatorConfig(enabled=all(c.emulator.enabled for c in configs.values())))
    return app
