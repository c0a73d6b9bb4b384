"""StateBucketStack: the S3 bucket(s) that hold the platform's Terraform state.

A chicken-and-egg stack: it keeps its own state in a local file (``terraform.state-bootstrap.tfstate``
in the project root, outside cdktf.out; keep it, or import the buckets later) and creates every distinct S3 backend
bucket the environment files name, hardened: versioning (state history, recovery from a bad write),
SSE with KMS, all public access blocked, bucket-owner-enforced ownership (no ACLs) and a policy
denying any request without TLS. ``cdktf deploy state-bootstrap`` once per account, then
``cdktf deploy dev``.

It also holds what is account-wide rather than per environment, and what must outlive every
environment (DESIGN fact 25): per region of any environment, the **kept-logs KMS key**
(``alias/platform/kept-logs``) that encrypts the control-plane log groups ``/aws/eks/<name>/cluster``,
which a destroy keeps for their retention. CloudWatch Logs needs the key to read what it ingested
under it, so it must not be the environment's own key (a destroy schedules that for deletion). Rotation
on, ``prevent_destroy``, its key policy lets CloudWatch Logs of that region use it for those groups
only; its ARN is published in the SSM parameter ``/platform/kept-logs/key-arn``, where every
environment's plan finds it (constructs/cluster.py). Built for every project with environments, a
Terraform Cloud-only one included (it has no state bucket). And the **Spot service-linked role**
``AWSServiceRoleForEC2Spot`` (a fresh account has none, and Karpenter's spot launches fail without
it, DESIGN fact 24). An ``import`` block adopts the role where it exists already (any earlier spot
request, console or CLI creates it), so the apply never fails "has been taken"; ``prevent_destroy``
keeps a destroy from deleting a role other stacks and teams use. No environment's destroy can touch
it: the environments only read it (constructs/preflight.py).

And, for each environment whose file asks (``deployer:``, model/deployer.py), the identities that
deploy it without keys: the account's OIDC provider for Terraform Cloud (``backend.hostname``) and/or
GitHub Actions, a role per environment trusting only that workspace (organization, project, run phase)
or repository environment, holding the environment's deployer policy (model/permissions.py, from its
synthesized JSON, so it follows the stack), and outputs with the role ARNs and the workspace
variables to set. The environment gives each role a cluster access entry (constructs/cluster.py).
Deploy this stack again after a change that adds resource types, before the environment's apply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stacks import bootstrap

bootstrap.prepare()  # before any layer or provider import: see stacks/bootstrap.py

from cdktf import LocalBackend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_iam_roles import DataAwsIamRoles
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_policy import IamPolicy
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter
from cdktf_cdktf_provider_aws.iam_service_linked_role import IamServiceLinkedRole
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule as Rule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload as AbortUploads,
    S3BucketLifecycleConfigurationRuleExpiration as Expiration,
    S3BucketLifecycleConfigurationRuleFilter as Filter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration as NoncurrentExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
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
from model import deployer
from model.permissions import deployer_policy
from model.names import KEPT_LOG_GROUPS, KEPT_LOGS_KEY_ALIAS, KEPT_LOGS_PARAMETER
from model.preflight import SPOT_ROLE_PATH, SPOT_SERVICE
from stacks.config import BOOTSTRAP_STACK, EmulatorConfig, StackConfig, log_bucket_name

# A destroy can drain nodes for hours (stateful pools: 4 h); 12 h is IAM's most for a role session.
MAX_SESSION_SECONDS = 12 * 3600
ACCOUNT_PLACEHOLDER = "000000000000"  # sized like an account id, so the packing is the real one's


def _key(name: str) -> str:
    """A bucket or environment name as an output name."""
    return name.replace(".", "_").replace("-", "_")


def deployer_policy_texts(doc: dict, account: str, phases: tuple[str, ...] | None = None) -> list[str]:
    """The environment's deployer policy documents as JSON, the account a Terraform reference."""
    kwargs = {"phases": phases} if phases else {}
    documents = deployer_policy(doc, account=ACCOUNT_PLACEHOLDER, **kwargs).documents
    return [json.dumps(d, separators=(",", ":")).replace(ACCOUNT_PLACEHOLDER, account) for d in documents]

STACK_NAME = BOOTSTRAP_STACK


class StateBucketStack(TerraformStack):
    """Hardened S3 state bucket(s) for the environments' S3 backends, with local state."""

    def __init__(self, scope: Construct, id_: str, *, buckets: dict[str, str], log_regions: tuple[str, ...] = (),
                 emulator: EmulatorConfig = EmulatorConfig(),
                 deployers: dict[str, tuple[StackConfig, dict]] | None = None) -> None:
        super().__init__(scope, id_)
        # In the project root (relative to cdktf.out/stacks/<id>/): a re-synth or a deleted cdktf.out
        # must never take this state with it. *.tfstate is git-ignored: keep the file safe.
        LocalBackend(self, path=f"../../../terraform.{id_}.tfstate")
        providers: dict[str, AwsProvider] = {}
        extra = emulator.provider_settings()
        deployers = deployers or {}
        regions = (set(buckets.values()) or {config.region for config, _ in deployers.values()}) | set(log_regions)
        for region in sorted(regions):
            providers[region] = AwsProvider(self, f"aws-{region}", region=region, alias=region,
                                            default_tags=[{"tags": {"ManagedBy": "cdktf", "Purpose": "terraform-state"}}],
                                            **extra)
        for name, region in sorted(buckets.items()):
            provider = providers[region]
            account = DataAwsCallerIdentity(self, f"account-{name}", provider=provider)
            # State: KMS-encrypted; versions pile up with every apply, so keep 90 days of history.
            bucket, _ = self._private_bucket(
                f"bucket-{name}", name, provider, sse_algorithm="aws:kms", prevent_destroy=True,
                lifecycle=Rule(id="state-history", status="Enabled", filter=[Filter(prefix="")],
                               noncurrent_version_expiration=[NoncurrentExpiration(noncurrent_days=90)],
                               abort_incomplete_multipart_upload=[AbortUploads(days_after_initiation=7)]))
            # Server access logs: SSE-S3 (log delivery cannot write to SSE-KMS buckets), kept a year,
            # written only by S3 log delivery on behalf of the state bucket in this account.
            logs, logs_policy = self._private_bucket(
                f"logs-{name}", log_bucket_name(name), provider, sse_algorithm="AES256",
                lifecycle=Rule(id="expire-logs", status="Enabled", filter=[Filter(prefix="")],
                               expiration=[Expiration(days=365)],
                               noncurrent_version_expiration=[NoncurrentExpiration(noncurrent_days=7)],
                               abort_incomplete_multipart_upload=[AbortUploads(days_after_initiation=7)]),
                statements=lambda arn: [{
                    "Sid": "S3ServerAccessLogDelivery",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/s3-access/*",
                    "Condition": {"ArnLike": {"aws:SourceArn": bucket.arn},
                                  "StringEquals": {"aws:SourceAccount": account.account_id}},
                }])
            # S3 checks at PutBucketLogging that the target's policy already lets log delivery write.
            S3BucketLoggingA(self, f"logging-{name}", bucket=bucket.id, provider=provider,
                             target_bucket=logs.id, target_prefix="s3-access/", depends_on=[logs_policy])
            TerraformOutput(self, f"bucket_{_key(name)}", value=bucket.arn)
        for region in sorted(set(log_regions)):
            self._kept_logs_key(region, providers[region])
        self._spot_service_linked_role(providers[min(providers)])
        if deployers:
            self._deployer_trust(providers[min(providers)], deployers)

    def _deployer_trust(self, provider: AwsProvider, deployers: dict[str, tuple[StackConfig, dict]]) -> None:
        """Per environment that asks (``deployer:``): its deployer policy as managed policies (from its
        synthesized JSON, model/permissions.py), and a role for Terraform Cloud and/or GitHub Actions
        holding them, trusted through the account's OIDC provider for that issuer (one per issuer,
        shared by the environments; IAM is global, so one provider configuration serves). Outputs
        each role's ARN and, for Terraform Cloud, the workspace variables to set."""
        account = DataAwsCallerIdentity(self, "deployer-account", provider=provider)
        issuers: dict[str, IamOpenidConnectProvider] = {}

        def issuer(host: str, audience: str) -> IamOpenidConnectProvider:
            if host not in issuers:
                issuers[host] = IamOpenidConnectProvider(
                    self, f"oidc-{host.replace('.', '-')}", url=f"https://{host}", client_id_list=[audience],
                    provider=provider)
            return issuers[host]

        for env, (config, doc) in sorted(deployers.items()):
            policies = [IamPolicy(self, f"deployer-{env}-{i}", name=f"{config.name}-deployer-{i}", provider=provider,
                                  description=f"What plan, apply and destroy of {env} call (python -m stacks.deployer {env})",
                                  policy=text)
                        for i, text in enumerate(deployer_policy_texts(doc, account.account_id), 1)]
            roles = config.deployer_roles
            outputs: dict[str, str] = {}
            tfc = config.deployer.terraform_cloud
            if tfc is not None:
                backend = config.backend
                host = backend.hostname
                provider_arn = issuer(host, deployer.TFC_AUDIENCE).arn
                phase = "apply" if tfc.plan_role else "*"
                role = self._trusted_role(f"deployer-{env}-terraform-cloud", roles["terraform_cloud"], provider, policies,
                                          provider_arn, host, deployer.TFC_AUDIENCE, deployer.tfc_subject(
                                              backend.organization, tfc.project, backend.workspace, phase))
                variables = {"TFC_AWS_PROVIDER_AUTH": "true"}
                if tfc.plan_role:
                    plan_policies = [IamPolicy(self, f"planner-{env}-{i}", name=f"{config.name}-planner-{i}",
                                               provider=provider, policy=text,
                                               description=f"What a plan of {env} reads (python -m stacks.deployer {env} --plan)")
                                     for i, text in enumerate(deployer_policy_texts(doc, account.account_id, ("read",)), 1)]
                    plan = self._trusted_role(f"planner-{env}-terraform-cloud", roles["terraform_cloud_plan"], provider,
                                              plan_policies, provider_arn, host, deployer.TFC_AUDIENCE,
                                              deployer.tfc_subject(backend.organization, tfc.project, backend.workspace,
                                                                   "plan"))
                    variables |= {"TFC_AWS_PLAN_ROLE_ARN": plan.arn, "TFC_AWS_APPLY_ROLE_ARN": role.arn}
                    outputs["terraform_cloud_plan_role_arn"] = plan.arn
                else:
                    variables["TFC_AWS_RUN_ROLE_ARN"] = role.arn
                outputs["terraform_cloud_role_arn"] = role.arn
                TerraformOutput(self, f"deployer_{_key(env)}_workspace_variables", value=variables,
                                description=f"Set these as environment variables of workspace {backend.workspace}")
            if config.deployer.github is not None:
                gh = config.deployer.github
                role = self._trusted_role(f"deployer-{env}-github", roles["github"], provider, policies,
                                          issuer(deployer.GITHUB_HOST, deployer.GITHUB_AUDIENCE).arn,
                                          deployer.GITHUB_HOST, deployer.GITHUB_AUDIENCE,
                                          deployer.github_subject(gh.repository, gh.environment))
                outputs["github_role_arn"] = role.arn
            for what, value in outputs.items():
                TerraformOutput(self, f"deployer_{_key(env)}_{what}", value=value)

    def _trusted_role(self, id_: str, name: str, provider: AwsProvider, policies: list[IamPolicy], provider_arn: str,
                      host: str, audience: str, subject: str) -> IamRole:
        """A role that ``host``'s tokens for ``subject`` (a StringLike pattern) and ``audience`` may
        assume through the OIDC provider ``provider_arn``, holding ``policies``."""
        trust = policy_document(self, f"{id_}-trust", [{
            "Effect": "Allow",
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": provider_arn},
            "Condition": {"StringEquals": {f"{host}:aud": audience}, "StringLike": {f"{host}:sub": subject}},
        }])
        trust.provider = provider
        role = IamRole(self, id_, name=name, assume_role_policy=trust.json, provider=provider,
                       max_session_duration=MAX_SESSION_SECONDS)
        for i, policy in enumerate(policies, 1):
            IamRolePolicyAttachment(self, f"{id_}-{i}", role=role.name, policy_arn=policy.arn, provider=provider)
        return role

    def _kept_logs_key(self, region: str, provider: AwsProvider) -> None:
        """The KMS key of every environment's control-plane log group in ``region``, which outlives the
        environment: never destroyed, found by the environments through its SSM parameter."""
        account = DataAwsCallerIdentity(self, f"kept-logs-account-{region}", provider=provider)
        partition = DataAwsPartition(self, f"kept-logs-partition-{region}", provider=provider)
        arn_prefix = f"arn:{partition.partition}:logs:{region}:{account.account_id}:log-group:"
        policy = policy_document(self, f"kept-logs-policy-doc-{region}", [
            {"Sid": "AccountAdministers", "Action": "kms:*", "Resource": "*",
             "Principal": {"AWS": f"arn:{partition.partition}:iam::{account.account_id}:root"}},
            {"Sid": "CloudWatchLogsUsesItForControlPlaneLogs",
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
             "Resource": "*", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
             "Condition": {"StringLike": {"kms:EncryptionContext:aws:logs:arn": f"{arn_prefix}{KEPT_LOG_GROUPS}"}}},
        ])
        policy.provider = provider
        key = KmsKey(self, f"kept-logs-key-{region}", provider=provider, enable_key_rotation=True,
                     deletion_window_in_days=30, policy=policy.json,
                     description="Control-plane log groups of the platform's environments, kept after a destroy",
                     lifecycle={"prevent_destroy": True})
        KmsAlias(self, f"kept-logs-alias-{region}", name=KEPT_LOGS_KEY_ALIAS, target_key_id=key.key_id,
                 provider=provider)
        SsmParameter(self, f"kept-logs-parameter-{region}", name=KEPT_LOGS_PARAMETER, type="String", value=key.arn,
                     description="ARN of the kept-logs KMS key (state-bootstrap): the environments' plans read it",
                     provider=provider)

    def _spot_service_linked_role(self, provider: AwsProvider) -> None:
        """``AWSServiceRoleForEC2Spot``, adopted where it exists, never destroyed (IAM is global: one
        provider is enough). The lookup depends on literals only, so the import's for_each is known at
        plan; once the role is in state the import is a no-op."""
        existing = DataAwsIamRoles(self, "existing-spot-role", path_prefix=SPOT_ROLE_PATH, provider=provider)
        role = IamServiceLinkedRole(self, "spot-service-linked-role", aws_service_name=SPOT_SERVICE,
                                    provider=provider,
                                    # AWS sets the description of an adopted role: never rewrite it
                                    lifecycle={"prevent_destroy": True, "ignore_changes": ["description"]})
        self.add_override("import", [{
            "for_each": f"${{toset({existing.fqn}.arns)}}",
            "to": f"{role.terraform_resource_type}.{role.friendly_unique_id}",
            "id": "${each.value}",
            "provider": f"aws.{provider.alias}",
        }])

    def _private_bucket(self, id_: str, bucket_name: str, provider: AwsProvider, *, sse_algorithm: str, lifecycle: Rule,
                        prevent_destroy: bool = False,
                        statements: Callable[[str], list[dict[str, Any]]] = lambda arn: [],
                        ) -> tuple[S3Bucket, S3BucketPolicy]:
        """A versioned, encrypted, owner-enforced bucket with no public access, a lifecycle rule and a
        policy that denies any request without TLS (plus ``statements(bucket_arn)``)."""
        bucket = S3Bucket(self, id_, bucket=bucket_name, provider=provider,
                          lifecycle={"prevent_destroy": True} if prevent_destroy else None)
        suffix = id_.removeprefix("bucket-")
        versioning = S3BucketVersioningA(self, f"versioning-{suffix}", bucket=bucket.id, provider=provider,
                                         versioning_configuration={"status": "Enabled"})
        S3BucketServerSideEncryptionConfigurationA(
            self, f"encryption-{suffix}", bucket=bucket.id, provider=provider,
            rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm=sse_algorithm)),
                bucket_key_enabled=True if sse_algorithm == "aws:kms" else None)])
        S3BucketPublicAccessBlock(self, f"public-access-{suffix}", bucket=bucket.id, provider=provider,
                                  block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
                                  restrict_public_buckets=True)
        S3BucketOwnershipControls(self, f"ownership-{suffix}", bucket=bucket.id, provider=provider,
                                  rule={"object_ownership": "BucketOwnerEnforced"})
        S3BucketLifecycleConfiguration(self, f"lifecycle-{suffix}", bucket=bucket.id, provider=provider,
                                       depends_on=[versioning], rule=[lifecycle])
        policy = policy_document(self, f"policy-doc-{suffix}", [*statements(bucket.arn), {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket.arn, f"{bucket.arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": False}},
        }])
        policy.provider = provider
        return bucket, S3BucketPolicy(self, f"policy-{suffix}", bucket=bucket.id, policy=policy.json,
                                      provider=provider)
