"""PlatformStack: one environment's whole platform in one Terraform configuration.

Creates the backend and the providers from config, the shared KMS key, composes the layers
(network -> IAM -> cluster -> Karpenter) and declares the seed's outputs. Constructs never create
providers or backends; this module does.
"""

from __future__ import annotations

from cdktf import App, CloudBackend, LocalBackend, NamedCloudWorkspace, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from constructs.network import Network
from constructs.policy import policy_document
from stacks.config import StackConfig


class PlatformStack(TerraformStack):
    """VPC + EKS + IAM + Karpenter for one environment (``environment`` names the stack)."""

    def __init__(self, scope: Construct, environment: str, *, config: StackConfig) -> None:
        super().__init__(scope, environment)
        self.environment = environment
        self.config = config
        self._backend(environment, config)
        self._aws_provider(environment, config)

        account = DataAwsCallerIdentity(self, "account")
        partition = DataAwsPartition(self, "partition")
        self.key = self._kms_key(config, account.account_id, partition.partition)

        self.network = Network(self, "network", config=config.network, name=config.name, region=config.region,
                               kms_key_arn=self.key.arn)

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

    def _aws_provider(self, environment: str, config: StackConfig) -> None:
        tags = {"Environment": environment, "ManagedBy": "cdktf", "Cluster": config.name, **config.tags}
        extra = {}
        if config.emulator.enabled:
            # Test-only: the emulator's endpoint comes from AWS_ENDPOINT_URL in Terraform's environment.
            extra = dict(access_key="testing", secret_key="testing", skip_credentials_validation=True,
                         skip_metadata_api_check="true", skip_region_validation=True, s3_use_path_style=True)
        AwsProvider(self, "aws", region=config.region, default_tags=[{"tags": tags}], **extra)

    # ------------------------------------------------------------------ shared encryption key

    def _kms_key(self, config: StackConfig, account_id: str, partition: str) -> KmsKey:
        """One customer-managed key (rotation on) for EKS secrets and the stack's log groups."""
        policy = policy_document(self, "kms-policy", [
            {
                "Sid": "AccountAdministers",
                "Action": "kms:*",
                "Resource": "*",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            },
            {
                "Sid": "CloudWatchLogsEncrypts",
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Principal": {"Service": f"logs.{config.region}.amazonaws.com"},
                "Condition": {"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{config.region}:{account_id}:log-group:*",
                }},
            },
        ])
        key = KmsKey(self, "kms-key", description=f"{config.name}: EKS secrets and log groups",
                     enable_key_rotation=True, deletion_window_in_days=30, policy=policy.json)
        KmsAlias(self, "kms-alias", name=f"alias/{config.name}", target_key_id=key.key_id)
        return key

    # ------------------------------------------------------------------ outputs

    def _outputs(self) -> None:
        net = self.network
        TerraformOutput(self, "vpc_id", value=net.vpc_id, description="VPC ID")
        TerraformOutput(self, "private_subnet_ids", value=net.private_subnet_ids,
                        description="Private (node) subnet IDs, in AZ order")
        TerraformOutput(self, "public_subnet_ids", value=net.public_subnet_ids,
                        description="Public (load balancer) subnet IDs, in AZ order")


def build_app(configs: dict[str, StackConfig], outdir: str | None = None) -> App:
    """An App with one PlatformStack per environment."""
    app = App(outdir=outdir) if outdir else App()
    for environment, config in configs.items():
        PlatformStack(app, environment, config=config)
    return app
