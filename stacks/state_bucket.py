"""StateBucketStack: the S3 bucket(s) that hold the platform's Terraform state.

A chicken-and-egg stack: it keeps its own state in a local file (``terraform.state-bootstrap.tfstate``
in its stack directory; keep it, or import the bucket later) and creates every distinct S3 backend
bucket the environment files name, hardened: versioning (state history, recovery from a bad write),
SSE with KMS, all public access blocked, bucket-owner-enforced ownership (no ACLs) and a policy
denying any request without TLS. ``cdktf deploy state-bootstrap`` once per account, then
``cdktf deploy dev``.
"""

from __future__ import annotations

from stacks import bootstrap

bootstrap.prepare()  # before any layer or provider import: see stacks/bootstrap.py

from cdktf import LocalBackend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import S3BucketOwnershipControls
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
from constructs import Construct

from constructs.policy import policy_document
from stacks.config import StackConfig

STACK_NAME = "state-bootstrap"


def state_buckets(configs: dict[str, StackConfig]) -> dict[str, str]:
    """``{bucket: region}`` of every S3 backend the environments use (cloud/local need none)."""
    buckets: dict[str, str] = {}
    for config in configs.values():
        backend = config.backend
        if backend.type == "s3":
            buckets.setdefault(backend.bucket, backend.region or config.region)
    return buckets


class StateBucketStack(TerraformStack):
    """Hardened S3 state bucket(s) for the environments' S3 backends, with local state."""

    def __init__(self, scope: Construct, id_: str, *, buckets: dict[str, str], emulator: bool = False) -> None:
        super().__init__(scope, id_)
        LocalBackend(self, path=f"terraform.{id_}.tfstate")
        providers: dict[str, AwsProvider] = {}
        extra = dict(access_key="testing", secret_key="testing", skip_credentials_validation=True,
                     skip_metadata_api_check="true", s3_use_path_style=True) if emulator else {}
        for region in sorted(set(buckets.values())):
            providers[region] = AwsProvider(self, f"aws-{region}", region=region, alias=region,
                                            default_tags=[{"tags": {"ManagedBy": "cdktf", "Purpose": "terraform-state"}}],
                                            **extra)
        for name, region in sorted(buckets.items()):
            provider = providers[region]
            bucket = S3Bucket(self, f"bucket-{name}", bucket=name, provider=provider,
                              lifecycle={"prevent_destroy": True})
            S3BucketVersioningA(self, f"versioning-{name}", bucket=bucket.id, provider=provider,
                                versioning_configuration={"status": "Enabled"})
            S3BucketServerSideEncryptionConfigurationA(
                self, f"encryption-{name}", bucket=bucket.id, provider=provider,
                rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(sse_algorithm="aws:kms")),
                    bucket_key_enabled=True)])
            S3BucketPublicAccessBlock(self, f"public-access-{name}", bucket=bucket.id, provider=provider,
                                      block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
                                      restrict_public_buckets=True)
            S3BucketOwnershipControls(self, f"ownership-{name}", bucket=bucket.id, provider=provider,
                                      rule={"object_ownership": "BucketOwnerEnforced"})
            tls_only = policy_document(self, f"tls-only-{name}", [{
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket.arn, f"{bucket.arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            }])
            tls_only.provider = provider
            S3BucketPolicy(self, f"policy-{name}", bucket=bucket.id, policy=tls_only.json, provider=provider)
            TerraformOutput(self, f"bucket_{name.replace('.', '_').replace('-', '_')}", value=bucket.arn)
