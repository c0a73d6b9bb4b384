"""What the identity that plans, applies and destroys a stack may call in AWS: the source of the
deployer policy (``stacks/deployer.py`` prints it, the ``state-bootstrap`` stack attaches it to the
Terraform Cloud and GitHub Actions roles it makes).

Keyed by what a synthesized stack holds, so a new resource cannot forget its permissions
(tests/test_deployer.py fails for any resource or data-source type, or destroy-time script, of any
stack that has no entry here):

- ``RESOURCES`` / ``DATA``: per Terraform type, the ``Grant``s the aws provider 5.100's calls need,
  by phase: ``read`` (every plan: refresh and data sources), ``create``, ``update``, ``delete``.
  Types of the helm and kubernetes providers and ``terraform_data`` call no AWS API (an empty entry,
  on purpose); their access to the cluster is the creator's, or an access entry
  (``cluster.admin_principal_arns``).
- ``SCRIPTS``: the destroy-time ``local-exec`` steps (constructs/teardown.py, the Karpenter node
  wait), keyed by their construct path, with what their ``aws`` CLI calls need.
- ``BACKENDS``: the state backend (S3 objects and the lock file; none for ``cloud`` and ``local``).
- ``PROVIDER``: what the aws provider calls when it starts (``sts:GetCallerIdentity``).

Each grant names a *scope*: the ARNs it may touch, built from the synthesized stack itself (the
literal names of its roles, policies, queue, rules, log groups, bucket; the cluster's ARNs from its
name), the region and the account, with a condition where IAM has one (``aws:RequestedRegion`` for
what cannot be named; ``aws:RequestTag`` / ``aws:ResourceTag`` on ``Cluster=<name>``, the stack's
default tag, where the service authorizes by tag; ``iam:PassedToService``, ``iam:AWSServiceName``,
``iam:PolicyARN`` on the IAM actions that hand out power). Pure data and functions: no provider
bindings, so the command and the fast tests run in a fraction of a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PHASES = ("read", "create", "update", "delete")
POLICY_MAX_CHARS = 6144  # a customer managed policy, whitespace not counted (IAM quotas)
POLICIES_PER_ROLE = 10  # managed policies attached to one role, the default quota
STACK_TAG = "Cluster"  # the default tag every resource of an environment carries (stacks/platform.py)


@dataclass(frozen=True)
class Grant:
    """``actions`` in ``phase`` on the ARNs of ``scope`` (a key of ``SCOPES``), under ``condition``
    (a key of ``CONDITIONS``, or none)."""

    phase: str
    actions: tuple[str, ...]
    scope: str
    condition: str = ""


def grants(scope: str, condition: str = "", **phases: Iterable[str]) -> tuple[Grant, ...]:
    """``grants("eks", read=[...], create=[...])``: one Grant per phase given."""
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise ValueError(f"unknown phases {sorted(unknown)}; use {PHASES}")
    return tuple(Grant(phase, tuple(actions), scope, condition) for phase, actions in phases.items() if actions)


def _tags(prefix: str) -> dict[str, list[str]]:
    return {"create": [f"{prefix}:TagResource"], "update": [f"{prefix}:TagResource", f"{prefix}:UntagResource"]}


EC2_TAGS = {"create": ["ec2:CreateTags"], "update": ["ec2:CreateTags", "ec2:DeleteTags"]}


def _ec2(read: list[str], create: list[str], update: list[str], delete: list[str],
         after_create: tuple[str, ...] = ()) -> tuple[Grant, ...]:
    """An EC2 resource the provider creates with its tags (TagSpecifications): the create call only
    with this stack's Cluster tag in the request, the tags written with it; the calls that follow the
    create (``after_create``: attributes, attachments), changes and the delete on it once tagged."""
    return (*grants("any", read=read),
            *grants("region", "request_tag", create=create),
            *grants("region", "tag_on_create", create=["ec2:CreateTags"]),
            *grants("region", "resource_tag", create=list(after_create), update=update + EC2_TAGS["update"],
                    delete=delete))


# ----------------------------------------------------------------------------- managed resources

RESOURCES: dict[str, tuple[Grant, ...]] = {
    # network (constructs/network.py)
    "aws_vpc": (*_ec2(["ec2:DescribeVpcs", "ec2:DescribeSecurityGroups", "ec2:DescribeRouteTables",
                       "ec2:DescribeNetworkAcls"],
                      ["ec2:CreateVpc"], ["ec2:ModifyVpcAttribute"], ["ec2:DeleteVpc"],
                      after_create=("ec2:ModifyVpcAttribute",)),
                *grants("region", read=["ec2:DescribeVpcAttribute"])),
    "aws_subnet": _ec2(["ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces"],
                       ["ec2:CreateSubnet"], ["ec2:ModifySubnetAttribute"], ["ec2:DeleteSubnet"],
                       after_create=("ec2:ModifySubnetAttribute",)),
    "aws_internet_gateway": _ec2(["ec2:DescribeInternetGateways"],
                                 ["ec2:CreateInternetGateway"], [],
                                 ["ec2:DetachInternetGateway", "ec2:DeleteInternetGateway"],
                                 after_create=("ec2:AttachInternetGateway",)),
    "aws_eip": _ec2(["ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute"], ["ec2:AllocateAddress"], [],
                    ["ec2:DisassociateAddress", "ec2:ReleaseAddress"]),
    "aws_nat_gateway": _ec2(["ec2:DescribeNatGateways"], ["ec2:CreateNatGateway"], [], ["ec2:DeleteNatGateway"]),
    "aws_route_table": _ec2(["ec2:DescribeRouteTables"], ["ec2:CreateRouteTable"], [], ["ec2:DeleteRouteTable"]),
    # routes and associations carry no tags: scoped by the route table's tag where EC2 authorizes on it
    "aws_route": (*grants("any", read=["ec2:DescribeRouteTables"]),
                  *grants("region", "resource_tag", create=["ec2:CreateRoute"], update=["ec2:ReplaceRoute"],
                          delete=["ec2:DeleteRoute"])),
    "aws_route_table_association": (*grants("any", read=["ec2:DescribeRouteTables"]),
                                    *grants("region", create=["ec2:AssociateRouteTable"],
                                            update=["ec2:ReplaceRouteTableAssociation"],
                                            delete=["ec2:DisassociateRouteTable"])),
    "aws_default_security_group": (*grants("any", read=["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules"]),
                                   # adopted untagged (the VPC's own group): its first tags and rules
                                   # are written before it carries the Cluster tag
                                   *grants("region", create=["ec2:RevokeSecurityGroupIngress",
                                                             "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags"]),
                                   *grants("region", "resource_tag",
                                           update=["ec2:AuthorizeSecurityGroupIngress",
                                                   "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
                                                   "ec2:RevokeSecurityGroupEgress", *EC2_TAGS["update"]])),
    "aws_flow_log": (*_ec2(["ec2:DescribeFlowLogs"], ["ec2:CreateFlowLogs"], [], ["ec2:DeleteFlowLogs"]),
                     *grants("roles", "pass_to_flow_logs", create=["iam:PassRole"], update=["iam:PassRole"])),
    # the discovery tag on EKS's cluster security group (tagged aws:eks:cluster-name, not ours)
    "aws_ec2_tag": (*grants("any", read=["ec2:DescribeTags"]),
                    *grants("region", "eks_cluster_tag", create=["ec2:CreateTags"],
                            update=["ec2:CreateTags", "ec2:DeleteTags"], delete=["ec2:DeleteTags"])),
    # shared key (stacks/platform.py): created with the Cluster tag, managed by it afterwards
    "aws_kms_key": (*grants("any", "request_tag", create=["kms:CreateKey"]),  # no key ARN before it exists
                    *grants("kms_keys", "request_tag", create=["kms:TagResource"]),  # its tags, in CreateKey
                    *grants("kms_keys", "resource_tag",
                            read=["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
                                  "kms:ListResourceTags"],
                            create=["kms:EnableKeyRotation", "kms:PutKeyPolicy"],
                            update=["kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:PutKeyPolicy",
                                    "kms:UpdateKeyDescription", "kms:TagResource", "kms:UntagResource"],
                            delete=["kms:ScheduleKeyDeletion"])),
    "aws_kms_alias": (*grants("any", read=["kms:ListAliases"]),
                      # authorized on the alias and on the key (an alias has no tags: no tag condition)
                      *grants("kms_aliases_and_keys", create=["kms:CreateAlias"], update=["kms:UpdateAlias"],
                              delete=["kms:DeleteAlias"])),
    # state-bootstrap: the kept-logs key's parameter (stacks/state_bucket.py)
    "aws_ssm_parameter": (*grants("any", read=["ssm:DescribeParameters"]),
                          *grants("parameters", read=["ssm:GetParameter", "ssm:GetParameters",
                                                      "ssm:ListTagsForResource"],
                                  create=["ssm:PutParameter", "ssm:AddTagsToResource"],
                                  update=["ssm:PutParameter", "ssm:AddTagsToResource",
                                          "ssm:RemoveTagsFromResource"],
                                  delete=["ssm:DeleteParameter"])),
    "aws_cloudwatch_log_group": (*grants("any", read=["logs:DescribeLogGroups"]),
                                 *grants("log_groups", read=["logs:ListTagsForResource", "logs:ListTagsLogGroup"],
                                         create=["logs:CreateLogGroup", "logs:PutRetentionPolicy",
                                                 "logs:TagResource", "logs:TagLogGroup", "logs:AssociateKmsKey"],
                                         update=["logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
                                                 "logs:AssociateKmsKey", "logs:DisassociateKmsKey",
                                                 "logs:TagResource", "logs:UntagResource", "logs:TagLogGroup",
                                                 "logs:UntagLogGroup"],
                                         delete=["logs:DeleteLogGroup"])),
    # IAM (constructs/iam.py, karpenter.py, addons.py, network.py)
    "aws_iam_role": grants("roles", read=["iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy",
                                          "iam:ListAttachedRolePolicies", "iam:ListRoleTags"],
                           create=["iam:CreateRole", "iam:TagRole"],
                           update=["iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole"],
                           delete=["iam:DeleteRole", "iam:ListInstanceProfilesForRole"]) +
                    # a role still in an instance profile (Karpenter's, of the node role) is taken out first
                    grants("roles_and_instance_profiles", delete=["iam:RemoveRoleFromInstanceProfile"]),
    "aws_iam_policy": grants("policies", read=["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
                                               "iam:ListPolicyTags"],
                             create=["iam:CreatePolicy", "iam:TagPolicy"],
                             update=["iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:TagPolicy",
                                     "iam:UntagPolicy"],
                             delete=["iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:ListPolicyVersions"]),
    "aws_iam_role_policy": grants("roles", read=["iam:GetRolePolicy"], create=["iam:PutRolePolicy"],
                                  update=["iam:PutRolePolicy"], delete=["iam:DeleteRolePolicy"]),
    # only the policies this stack attaches (iam:PolicyARN): no other policy can be put on its roles
    "aws_iam_role_policy_attachment": (*grants("roles", read=["iam:ListAttachedRolePolicies"]),
                                       *grants("roles", "attached_policies", create=["iam:AttachRolePolicy"],
                                               delete=["iam:DetachRolePolicy"])),
    "aws_iam_openid_connect_provider": grants(
        "oidc_providers", read=["iam:GetOpenIDConnectProvider"],
        create=["iam:CreateOpenIDConnectProvider", "iam:TagOpenIDConnectProvider"],
        update=["iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider",
                "iam:RemoveClientIDFromOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
                "iam:UntagOpenIDConnectProvider"],
        delete=["iam:DeleteOpenIDConnectProvider"]),
    "aws_iam_service_linked_role": (*grants("service_linked_roles", read=["iam:GetRole", "iam:ListRoleTags"],
                                            update=["iam:UpdateRoleDescription", "iam:TagRole", "iam:UntagRole"],
                                            delete=["iam:DeleteServiceLinkedRole",
                                                    "iam:GetServiceLinkedRoleDeletionStatus"]),
                                    *grants("service_linked_roles", "spot_service", create=["iam:CreateServiceLinkedRole"])),
    # EKS (constructs/cluster.py, addons.py)
    "aws_eks_cluster": (*grants("any", "request_tag", create=["eks:CreateCluster"]),  # authorized on "*"
                        *grants("eks", read=["eks:DescribeCluster", "eks:DescribeUpdate", "eks:ListTagsForResource"],
                                create=["eks:TagResource"],
                                update=["eks:UpdateClusterConfig", "eks:UpdateClusterVersion", "eks:TagResource",
                                        "eks:UntagResource"],
                                delete=["eks:DeleteCluster"]),
                        *grants("roles", "pass_to_eks", create=["iam:PassRole"], update=["iam:PassRole"]),
                        # secrets encryption: EKS creates a grant on the key as the caller
                        *grants("kms_keys", "resource_tag", create=["kms:CreateGrant", "kms:DescribeKey"]),
                        *grants("service_linked_roles", "eks_service", create=["iam:CreateServiceLinkedRole"])),
    "aws_eks_node_group": (*grants("eks", read=["eks:DescribeNodegroup", "eks:DescribeUpdate"],
                                   create=["eks:CreateNodegroup", "eks:TagResource"],
                                   update=["eks:UpdateNodegroupConfig", "eks:UpdateNodegroupVersion",
                                           "eks:TagResource", "eks:UntagResource"],
                                   delete=["eks:DeleteNodegroup"]),
                           *grants("roles", "pass_to_nodes", create=["iam:PassRole"]),
                           *grants("service_linked_roles", "eks_nodegroup_service",
                                   create=["iam:CreateServiceLinkedRole"])),
    "aws_eks_addon": (*grants("any", read=["eks:DescribeAddonVersions"]),
                      *grants("eks", read=["eks:DescribeAddon", "eks:DescribeUpdate"],
                              create=["eks:CreateAddon", "eks:TagResource"],
                              update=["eks:UpdateAddon", "eks:TagResource", "eks:UntagResource"],
                              delete=["eks:DeleteAddon"]),
                      *grants("roles", "pass_to_eks_addons", create=["iam:PassRole"], update=["iam:PassRole"])),
    "aws_eks_access_entry": (*grants("eks", read=["eks:DescribeAccessEntry"],
                                     create=["eks:CreateAccessEntry", "eks:TagResource"],
                                     update=["eks:UpdateAccessEntry", "eks:TagResource", "eks:UntagResource"],
                                     delete=["eks:DeleteAccessEntry"]),
                             # an EC2_LINUX entry (the node role) passes the role to EC2 (Service Authorization Reference)
                             *grants("roles", "pass_to_ec2", create=["iam:PassRole"])),
    # EKS Pod Identity (DESIGN fact 29): the role is passed to the Pod Identity agent's service
    "aws_eks_pod_identity_association": (*grants("eks", read=["eks:DescribePodIdentityAssociation"],
                                                 create=["eks:CreatePodIdentityAssociation", "eks:TagResource"],
                                                 update=["eks:UpdatePodIdentityAssociation", "eks:TagResource",
                                                         "eks:UntagResource"],
                                                 delete=["eks:DeletePodIdentityAssociation"]),
                                         # (EKS also reads the role: iam:GetRole, granted with aws_iam_role's reads)
                                         *grants("roles", "pass_to_pods", create=["iam:PassRole"],
                                                 update=["iam:PassRole"])),
    # a rule on a group the stack does not own (EKS's cluster security group): the region and account
    "aws_vpc_security_group_ingress_rule": (*grants("any", read=["ec2:DescribeSecurityGroupRules"]),
                                            *grants("region", create=["ec2:AuthorizeSecurityGroupIngress",
                                                                      "ec2:CreateTags"],
                                                    update=["ec2:ModifySecurityGroupRules", *EC2_TAGS["update"]],
                                                    delete=["ec2:RevokeSecurityGroupIngress"])),
    "aws_vpc_security_group_egress_rule": (*grants("any", read=["ec2:DescribeSecurityGroupRules"]),
                                           *grants("region", create=["ec2:AuthorizeSecurityGroupEgress",
                                                                     "ec2:CreateTags"],
                                                   update=["ec2:ModifySecurityGroupRules", *EC2_TAGS["update"]],
                                                   delete=["ec2:RevokeSecurityGroupEgress"])),
    "aws_security_group_rule": (*grants("any", read=["ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules"]),
                                *grants("region", create=["ec2:AuthorizeSecurityGroupIngress",
                                                          "ec2:AuthorizeSecurityGroupEgress"],
                                        update=["ec2:UpdateSecurityGroupRuleDescriptionsIngress",
                                                "ec2:UpdateSecurityGroupRuleDescriptionsEgress"],
                                        delete=["ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"])),
    "aws_eks_access_policy_association": grants("eks", read=["eks:ListAssociatedAccessPolicies"],
                                                create=["eks:AssociateAccessPolicy"],
                                                delete=["eks:DisassociateAccessPolicy"]),
    # Karpenter's interruption queue and rules (constructs/karpenter.py)
    "aws_sqs_queue": grants("queues", read=["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueueTags"],
                            create=["sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:TagQueue"],
                            update=["sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"],
                            delete=["sqs:DeleteQueue"]),
    "aws_sqs_queue_policy": grants("queues", read=["sqs:GetQueueAttributes"], create=["sqs:SetQueueAttributes"],
                                   update=["sqs:SetQueueAttributes"], delete=["sqs:SetQueueAttributes"]),
    "aws_cloudwatch_event_rule": grants("rules", read=["events:DescribeRule", "events:ListTagsForResource",
                                                       "events:ListTargetsByRule"],
                                        create=["events:PutRule", "events:TagResource"],
                                        update=["events:PutRule", "events:EnableRule", "events:DisableRule",
                                                "events:TagResource", "events:UntagResource"],
                                        delete=["events:DeleteRule"]),
    "aws_cloudwatch_event_target": grants("rules", read=["events:ListTargetsByRule"], create=["events:PutTargets"],
                                          update=["events:PutTargets"], delete=["events:RemoveTargets"]),
    # the state buckets (stacks/state_bucket.py): the bucket grants cover its sub-resources
    "aws_s3_bucket": grants("buckets", read=["s3:ListBucket", "s3:GetBucket*", "s3:GetAccelerateConfiguration",
                                             "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration",
                                             "s3:GetEncryptionConfiguration"],
                            create=["s3:CreateBucket", "s3:PutBucketTagging"], update=["s3:PutBucketTagging"],
                            delete=["s3:DeleteBucket"]),
    "aws_s3_bucket_versioning": grants("buckets", read=["s3:GetBucketVersioning"], create=["s3:PutBucketVersioning"],
                                       update=["s3:PutBucketVersioning"], delete=["s3:PutBucketVersioning"]),
    "aws_s3_bucket_server_side_encryption_configuration": grants(
        "buckets", read=["s3:GetEncryptionConfiguration"], create=["s3:PutEncryptionConfiguration"],
        update=["s3:PutEncryptionConfiguration"], delete=["s3:PutEncryptionConfiguration"]),
    "aws_s3_bucket_public_access_block": grants("buckets", read=["s3:GetBucketPublicAccessBlock"],
                                                create=["s3:PutBucketPublicAccessBlock"],
                                                update=["s3:PutBucketPublicAccessBlock"],
                                                delete=["s3:PutBucketPublicAccessBlock"]),
    "aws_s3_bucket_ownership_controls": grants("buckets", read=["s3:GetBucketOwnershipControls"],
                                               create=["s3:PutBucketOwnershipControls"],
                                               update=["s3:PutBucketOwnershipControls"],
                                               delete=["s3:PutBucketOwnershipControls"]),
    "aws_s3_bucket_lifecycle_configuration": grants("buckets", read=["s3:GetLifecycleConfiguration"],
                                                    create=["s3:PutLifecycleConfiguration"],
                                                    update=["s3:PutLifecycleConfiguration"],
                                                    delete=["s3:PutLifecycleConfiguration"]),
    "aws_s3_bucket_logging": grants("buckets", read=["s3:GetBucketLogging"], create=["s3:PutBucketLogging"],
                                    update=["s3:PutBucketLogging"], delete=["s3:PutBucketLogging"]),
    "aws_s3_bucket_policy": grants("buckets", read=["s3:GetBucketPolicy"], create=["s3:PutBucketPolicy"],
                                   update=["s3:PutBucketPolicy"], delete=["s3:DeleteBucketPolicy"]),
    # no AWS API: Terraform itself, and the Kubernetes API (the cluster's access entries decide)
    "terraform_data": (),
    "helm_release": (),
    "kubernetes_namespace_v1": (),
    "kubernetes_service_account_v1": (),
    "kubernetes_storage_class_v1": (),
}

# ----------------------------------------------------------------------------- data sources (every plan)

DATA: dict[str, tuple[Grant, ...]] = {
    "aws_availability_zones": grants("any", read=["ec2:DescribeAvailabilityZones"]),
    "aws_caller_identity": grants("any", read=["sts:GetCallerIdentity"]),
    "aws_partition": (),
    "aws_iam_policy_document": (),  # rendered by the provider, no call
    "aws_eks_cluster_auth": (),  # a token the provider signs itself (a presigned sts:GetCallerIdentity)
    "aws_cloudwatch_log_groups": grants("any", read=["logs:DescribeLogGroups"]),
    "aws_ec2_instance_type": grants("any", read=["ec2:DescribeInstanceTypes"]),
    "aws_ec2_instance_type_offerings": grants("any", read=["ec2:DescribeInstanceTypeOfferings"]),
    "aws_eips": grants("any", read=["ec2:DescribeAddresses"]),
    "aws_eks_cluster": grants("eks", read=["eks:DescribeCluster"]),
    # a network brought by the user (looked up, not created)
    "aws_vpc": (*grants("any", read=["ec2:DescribeVpcs", "ec2:DescribeRouteTables"]),
                *grants("region", read=["ec2:DescribeVpcAttribute"])),
    "aws_subnet": grants("any", read=["ec2:DescribeSubnets"]),
    "aws_subnets": grants("any", read=["ec2:DescribeSubnets"]),
    "aws_route_table": grants("any", read=["ec2:DescribeRouteTables"]),
    "aws_route_tables": grants("any", read=["ec2:DescribeRouteTables"]),
    "aws_security_group": grants("any", read=["ec2:DescribeSecurityGroups"]),
    "aws_security_groups": grants("any", read=["ec2:DescribeSecurityGroups"]),
    # a zone's removal: this cluster's Karpenter nodes and claim volumes outside the zones (constructs/network.py)
    "aws_instances": grants("any", read=["ec2:DescribeInstances"]),
    "aws_ebs_volumes": grants("any", read=["ec2:DescribeVolumes"]),
    "aws_nat_gateways": grants("any", read=["ec2:DescribeNatGateways"]),
    "aws_internet_gateway": grants("any", read=["ec2:DescribeInternetGateways"]),
    "aws_eks_addon_version": grants("any", read=["eks:DescribeAddonVersions"]),
    "aws_kms_alias": grants("any", read=["kms:ListAliases", "kms:DescribeKey"]),
    "aws_kms_key": grants("kms_keys", read=["kms:DescribeKey"]),
    "aws_eks_clusters": grants("any", read=["eks:ListClusters"]),
    "aws_iam_roles": grants("any", read=["iam:ListRoles"]),
    "aws_iam_session_context": grants("account_roles", read=["iam:GetRole"]),  # the caller's role, from its session
    # the preflight's quotas (constructs/preflight.py); a quota never raised has only its default
    "aws_servicequotas_service_quota": grants("any", read=["servicequotas:GetServiceQuota",
                                                           "servicequotas:GetAWSDefaultServiceQuota"]),
    # the account's kept-logs key, published by state-bootstrap (constructs/cluster.py); a String
    "aws_ssm_parameters_by_path": grants("parameter_paths", read=["ssm:GetParametersByPath"]),
    # the running vpc-cni, where the cluster and its controller node group run (constructs/addons.py)
    "aws_eks_node_groups": grants("eks", read=["eks:ListNodegroups"]),
    "aws_eks_addon": grants("eks", read=["eks:DescribeAddon"]),
}

# ----------------------------------------------------------------------------- destroy-time scripts

SCRIPTS: dict[str, tuple[Grant, ...]] = {
    # constructs/karpenter.py: waits until Karpenter's instances are gone
    "karpenter/node-cleanup-wait": grants("any", delete=["ec2:DescribeInstances"]),
    # constructs/teardown.py + model/teardown.py: kubeconfig, then the controllers' load balancers
    "teardown/workload-cleanup": (*grants("eks", delete=["eks:DescribeCluster"]),
                                  *grants("any", delete=["elasticloadbalancing:DescribeLoadBalancers",
                                                         "elasticloadbalancing:DescribeTags",
                                                         "elasticloadbalancing:DescribeTargetGroups",
                                                         "ec2:DescribeSecurityGroups"])),
    # after the cluster: by tag only (the script filters; IAM cannot: the controllers' tags differ)
    "teardown/sweep": (*grants("eks", delete=["eks:DescribeCluster"]),
                       *grants("any", delete=["elasticloadbalancing:DescribeLoadBalancers",
                                              "elasticloadbalancing:DescribeTags",
                                              "elasticloadbalancing:DescribeTargetGroups",
                                              "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules",
                                              "ec2:DescribeNetworkInterfaces", "ec2:DescribeVolumes",
                                              # the nodes of untagged CNI interfaces (model/teardown.py)
                                              "ec2:DescribeInstances"]),
                       *grants("region", delete=["elasticloadbalancing:DeleteLoadBalancer",
                                                 "elasticloadbalancing:DeleteTargetGroup",
                                                 "ec2:DeleteNetworkInterface", "ec2:RevokeSecurityGroupIngress",
                                                 "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup"])),
}

# ----------------------------------------------------------------------------- state backend, provider

BACKENDS: dict[str, tuple[Grant, ...]] = {
    # the state object and Terraform's lock file (use_lockfile) beside it; the bucket's aws/s3 key
    # lets every principal of the account use it through S3, so no kms action is needed
    "s3": (*grants("state_bucket", read=["s3:ListBucket"]),
           *grants("state_objects", read=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])),
    "cloud": (),
    "local": (),
}

PROVIDER: tuple[Grant, ...] = grants("any", read=["sts:GetCallerIdentity"])


# ----------------------------------------------------------------------------- scopes: ARNs from the stack


@dataclass(frozen=True)
class Target:
    """Where a stack deploys: partition, account, region and the cluster name (the stack's Cluster tag)."""

    partition: str
    account: str
    region: str
    name: str
    regions: tuple[str, ...] = ()

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")


def _literal(value: Any) -> str | None:
    """A configured value Terraform knows without any reference, else None."""
    return value if isinstance(value, str) and "${" not in value else None


def _names(doc: Mapping, rtype: str, key: str = "name", block: str = "resource") -> list[str]:
    """Literal ``key`` of every ``rtype`` in ``doc`` (``name_prefix`` becomes ``prefix*``); ``*`` for a
    value known only at apply."""
    found = []
    for body in doc.get(block, {}).get(rtype, {}).values():
        value = _literal(body.get(key))
        if value is None and _literal(body.get(f"{key}_prefix")):
            value = body[f"{key}_prefix"] + "*"
        found.append(value if value is not None else "*")
    return sorted(set(found))


def _eks_arns(doc: Mapping, t: Target) -> list[str]:
    clusters = _names(doc, "aws_eks_cluster") or [t.name]
    return [t.arn("eks", f"{kind}/{c}{suffix}") for c in clusters
            for kind, suffix in (("cluster", ""), ("nodegroup", "/*"), ("addon", "/*"), ("access-entry", "/*"),
                                 ("podidentityassociation", "/*"))]


def _log_group_arns(doc: Mapping, t: Target) -> list[str]:
    return [t.arn("logs", f"log-group:{n}{suffix}") for n in _names(doc, "aws_cloudwatch_log_group")
            for suffix in ("", ":*")]


def _oidc_arns(doc: Mapping, t: Target) -> list[str]:
    arns = []
    for body in doc.get("resource", {}).get("aws_iam_openid_connect_provider", {}).values():
        url = _literal(body.get("url"))
        host = url.removeprefix("https://") if url else f"oidc.eks.{t.region}.amazonaws.com/id/*"
        arns.append(t.arn("iam", f"oidc-provider/{host}", region=False))
    return sorted(set(arns))


def _backend(doc: Mapping) -> tuple[str, dict]:
    backend = doc.get("terraform", {}).get("backend", {})
    kind = next(iter(backend), "local")
    return kind, backend.get(kind, {})


def _state_objects(doc: Mapping, t: Target) -> list[str]:
    _, s3 = _backend(doc)
    key = s3.get("key", "*")
    return [f"arn:{t.partition}:s3:::{s3.get('bucket', '*')}/{key}", f"arn:{t.partition}:s3:::{s3.get('bucket', '*')}/{key}.tflock"]


SCOPES: dict[str, Callable[[Mapping, Target], list[str]]] = {
    "any": lambda doc, t: ["*"],
    # every resource of the action's service in the region and account (actions that name resources)
    "region": lambda doc, t: ["*"],  # by service in statements(): arn:<partition>:<service>:<region>:<account>:*
    "eks": _eks_arns,
    "roles": lambda doc, t: [t.arn("iam", f"role/{n}", region=False) for n in _names(doc, "aws_iam_role")],
    "service_linked_roles": lambda doc, t: [t.arn("iam", "role/aws-service-role/*", region=False)],
    "policies": lambda doc, t: [t.arn("iam", f"policy/{n}", region=False) for n in _names(doc, "aws_iam_policy")],
    "oidc_providers": _oidc_arns,
    "kms_keys": lambda doc, t: [t.arn("kms", "key/*")],
    "kms_aliases_and_keys": lambda doc, t: [t.arn("kms", n) for n in _names(doc, "aws_kms_alias")] + [t.arn("kms", "key/*")],
    "account_roles": lambda doc, t: [t.arn("iam", "role/*", region=False)],
    "roles_and_instance_profiles": lambda doc, t: (SCOPES["roles"](doc, t)
                                                   + [t.arn("iam", "instance-profile/*", region=False)]),
    "log_groups": _log_group_arns,
    "queues": lambda doc, t: [t.arn("sqs", n) for n in _names(doc, "aws_sqs_queue")],
    "rules": lambda doc, t: [t.arn("events", f"rule/{n}") for n in _names(doc, "aws_cloudwatch_event_rule")],
    "buckets": lambda doc, t: [f"arn:{t.partition}:s3:::{n}" for n in _names(doc, "aws_s3_bucket", "bucket")],
    "state_bucket": lambda doc, t: [f"arn:{t.partition}:s3:::{_backend(doc)[1].get('bucket', '*')}"],
    "state_objects": _state_objects,
    "parameters": lambda doc, t: [t.arn("ssm", f"parameter{n}") for n in _names(doc, "aws_ssm_parameter")],
    # GetParametersByPath authorizes on the path: arn:...:parameter/<path>
    "parameter_paths": lambda doc, t: [t.arn("ssm", f"parameter{p}")
                                       for p in _names(doc, "aws_ssm_parameters_by_path", "path", block="data")],
}


def _attached_policy_arns(doc: Mapping, t: Target) -> list[str]:
    """The policy ARNs the stack attaches to its roles: AWS-managed ones literally, its own by name."""
    own = {n for n in _names(doc, "aws_iam_policy")}
    arns = set()
    for body in doc.get("resource", {}).get("aws_iam_role_policy_attachment", {}).values():
        arn = str(body.get("policy_arn", ""))
        arn = re.sub(r"\$\{data\.aws_partition\.[^}]+\}", t.partition, arn)
        if "${" not in arn:
            arns.add(arn)
        else:  # a reference to one of the stack's own policies
            arns.update(t.arn("iam", f"policy/{n}", region=False) for n in own)
    return sorted(arns)


def _services_passed(service: str) -> Callable[[Mapping, Target], dict]:
    return lambda doc, t: {"StringEquals": {"iam:PassedToService": service}}


CONDITIONS: dict[str, Callable[[Mapping, Target], dict]] = {
    "request_tag": lambda doc, t: {"StringEquals": {f"aws:RequestTag/{STACK_TAG}": t.name}},
    "resource_tag": lambda doc, t: {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": t.name}},
    # tags written by a create call (TagSpecifications), only with this stack's tag
    "tag_on_create": lambda doc, t: {"StringEquals": {f"aws:RequestTag/{STACK_TAG}": t.name},
                                     "Null": {"ec2:CreateAction": "false"}},
    "eks_cluster_tag": lambda doc, t: {"StringEquals": {"aws:ResourceTag/aws:eks:cluster-name": t.name}},
    "attached_policies": lambda doc, t: {"ArnEquals": {"iam:PolicyARN": _attached_policy_arns(doc, t)}},
    "pass_to_eks": _services_passed("eks.amazonaws.com"),
    "pass_to_ec2": _services_passed("ec2.amazonaws.com"),
    # the node role of a managed node group (EKS passes it on to EC2's instance profile)
    "pass_to_nodes": lambda doc, t: {"StringEquals": {"iam:PassedToService": ["eks.amazonaws.com",
                                                                              "ec2.amazonaws.com"]}},
    "pass_to_eks_addons": _services_passed("eks.amazonaws.com"),
    "pass_to_flow_logs": _services_passed("vpc-flow-logs.amazonaws.com"),
    "pass_to_pods": _services_passed("pods.eks.amazonaws.com"),

    "eks_service": lambda doc, t: {"StringEquals": {"iam:AWSServiceName": "eks.amazonaws.com"}},
    "eks_nodegroup_service": lambda doc, t: {"StringEquals": {"iam:AWSServiceName": "eks-nodegroup.amazonaws.com"}},
    "spot_service": lambda doc, t: {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}},
}
GLOBAL_SERVICES = ("iam", "sts", "s3")  # no region condition on these (IAM and STS are global, S3 by ARN)


# ----------------------------------------------------------------------------- what a stack needs


class MissingEntry(KeyError):
    """A type or script of the stack without an entry here (the message says what to add)."""


def script_key(body: Mapping) -> str | None:
    """The construct path (without the stack) of a ``terraform_data`` with a ``local-exec`` step."""
    if not any("local-exec" in p for p in body.get("provisioner", []) or []):
        return None
    path = body.get("//", {}).get("metadata", {}).get("path", "")
    return path.split("/", 1)[1] if "/" in path else path


def missing(doc: Mapping) -> list[str]:
    """Every resource type, data-source type, destroy-time script and backend of ``doc`` this module
    has no entry for, as ``resource aws_x`` / ``data aws_y`` / ``script a/b`` / ``backend z``."""
    gaps = [f"resource {t}" for t in doc.get("resource", {}) if t not in RESOURCES]
    gaps += [f"data {t}" for t in doc.get("data", {}) if t not in DATA]
    for body in doc.get("resource", {}).get("terraform_data", {}).values():
        key = script_key(body)
        if key is not None and key not in SCRIPTS:
            gaps.append(f"script {key}")
    kind, _ = _backend(doc)
    if kind not in BACKENDS:
        gaps.append(f"backend {kind}")
    return sorted(gaps)


def needed(doc: Mapping, phases: Iterable[str] = PHASES) -> list[tuple[str, Grant]]:
    """``(source, grant)`` for everything ``doc`` holds, in the phases asked for."""
    gaps = missing(doc)
    if gaps:
        raise MissingEntry(f"model/permissions.py has no entry for {', '.join(gaps)}: add what the aws provider "
                           "calls for it (read/create/update/delete) before the stack can use it")
    wanted = set(phases)
    found: list[tuple[str, Grant]] = [("provider aws", g) for g in PROVIDER]
    for rtype in sorted(doc.get("resource", {})):
        found += [(f"resource {rtype}", g) for g in RESOURCES[rtype]]
    for dtype in sorted(doc.get("data", {})):
        found += [(f"data {dtype}", g) for g in DATA[dtype]]
    for body in doc.get("resource", {}).get("terraform_data", {}).values():
        key = script_key(body)
        if key is not None:
            found += [(f"script {key}", g) for g in SCRIPTS[key]]
    kind, _ = _backend(doc)
    found += [(f"backend {kind}", g) for g in BACKENDS[kind]]
    return [(source, g) for source, g in found if g.phase in wanted]


def actions(doc: Mapping, phases: Iterable[str] = PHASES) -> set[str]:
    """Every action ``doc`` needs in ``phases``."""
    return {a for _, g in needed(doc, phases) for a in g.actions}


def target(doc: Mapping, *, account: str, partition: str | None = None) -> Target:
    """Region, regions and cluster name from the stack's aws provider(s); the account is given."""
    providers = doc.get("provider", {}).get("aws", [])
    regions = tuple(sorted({p.get("region", "") for p in providers if p.get("region")}))
    tags = next((p["default_tags"][0]["tags"] for p in providers if p.get("default_tags")), {})
    region = regions[0] if regions else "us-east-1"
    if partition is None:
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return Target(partition=partition, account=account, region=region, name=tags.get(STACK_TAG, ""), regions=regions)


def statements(doc: Mapping, t: Target, phases: Iterable[str] = PHASES) -> list[dict[str, Any]]:
    """The IAM statements: grants of one scope and condition merged, plan (read) apart from apply.
    Scope ``region`` becomes, per service, every resource of that service in the region and account;
    ``*`` on a regional service carries the ``aws:RequestedRegion`` condition."""
    merged: dict[tuple[str, str, bool], set[str]] = {}
    for _, g in needed(doc, phases):
        merged.setdefault((g.scope, g.condition, g.phase == "read"), set()).update(g.actions)
    regions = list(t.regions or (t.region,))
    out: list[dict[str, Any]] = []

    def emit(sid: str, acts: set[str], resources: list[str], condition: dict) -> None:
        stmt: dict[str, Any] = {"Sid": re.sub(r"[^A-Za-z0-9]", "", sid), "Effect": "Allow", "Action": sorted(acts),
                                "Resource": resources if len(resources) > 1 else resources[0]}
        if condition:
            stmt["Condition"] = condition
        out.append(stmt)

    for (scope, condition, read), acts in sorted(merged.items(), key=lambda kv: (not kv[0][2], kv[0][0], kv[0][1])):
        sid = "".join(w.title() for w in f"{scope}_{condition}".split("_")) + ("Plan" if read else "Apply")
        cond = {k: dict(v) for k, v in (CONDITIONS[condition](doc, t) if condition else {}).items()}
        services: dict[str, set[str]] = {}
        for a in acts:
            services.setdefault(a.split(":")[0], set()).add(a)
        if scope == "region":
            for service, group in sorted(services.items()):
                emit(sid + service.title(), group, [f"arn:{t.partition}:{service}:{r}:{t.account}:*" for r in regions],
                     cond)
            continue
        resources = SCOPES[scope](doc, t)
        if resources != ["*"]:
            emit(sid, acts, resources, cond)
            continue
        global_ = {a for a in acts if a.split(":")[0] in GLOBAL_SERVICES}
        if global_:
            emit(sid + "Global", global_, resources, cond)
        if acts - global_:
            regional = {k: dict(v) for k, v in cond.items()}
            regional.setdefault("StringEquals", {})["aws:RequestedRegion"] = regions
            emit(sid, acts - global_, resources, regional)
    seen: dict[str, int] = {}
    for stmt in out:  # Sids are unique within a policy; make them unique overall
        n = seen[stmt["Sid"]] = seen.get(stmt["Sid"], 0) + 1
        if n > 1:
            stmt["Sid"] += str(n)
    return out


def compact(document: Mapping) -> str:
    """The policy as IAM counts it against its size limit (no whitespace)."""
    return json.dumps(document, separators=(",", ":"))


def policies(doc: Mapping, t: Target, phases: Iterable[str] = PHASES,
             max_chars: int = POLICY_MAX_CHARS) -> list[dict[str, Any]]:
    """The statements packed into as few managed policy documents as fit ``max_chars`` each
    (a statement too large alone is split by its actions)."""
    pieces: list[dict[str, Any]] = []
    for stmt in statements(doc, t, phases):
        if len(compact({"Version": "2012-10-17", "Statement": [stmt]})) <= max_chars:
            pieces.append(stmt)
            continue
        acts, part, n = list(stmt["Action"]), [], 0
        for a in acts:
            trial = {**stmt, "Sid": f"{stmt['Sid']}{n}", "Action": part + [a]}
            if part and len(compact({"Version": "2012-10-17", "Statement": [trial]})) > max_chars:
                pieces.append({**stmt, "Sid": f"{stmt['Sid']}{n}", "Action": part})
                part, n = [], n + 1
            part.append(a)
        pieces.append({**stmt, "Sid": f"{stmt['Sid']}{n}", "Action": part})
    documents: list[list[dict[str, Any]]] = []
    for stmt in pieces:  # first fit
        for docs in documents:
            if len(compact({"Version": "2012-10-17", "Statement": docs + [stmt]})) <= max_chars:
                docs.append(stmt)
                break
        else:
            documents.append([stmt])
    return [{"Version": "2012-10-17", "Statement": s} for s in documents]


@dataclass(frozen=True)
class DeployerPolicy:
    """An environment's deployer policy: ``documents`` (managed policy documents) and, per action,
    what needs it (``sources``)."""

    documents: list[dict[str, Any]]
    sources: dict[str, list[str]] = field(default_factory=dict)


def merged(*docs: Mapping) -> dict[str, Any]:
    """One stack holding what ``docs`` (the same environment before and after a change) hold: its
    deployer policy covers the change, which creates what the new one has and deletes what only the
    old one had (the first doc's backend and providers)."""
    out: dict[str, Any] = {k: v for k, v in docs[0].items() if k not in ("resource", "data")}
    for block in ("resource", "data"):
        types: dict[str, dict] = {}
        for doc in docs:
            for rtype, items in doc.get(block, {}).items():
                types.setdefault(rtype, {}).update(items)
        out[block] = types
    return out


def deployer_policy(doc: Mapping, *, account: str, partition: str | None = None,
                    phases: Iterable[str] = PHASES) -> DeployerPolicy:
    """The managed policy documents the identity that plans/applies/destroys ``doc`` needs."""
    phases = tuple(phases)
    t = target(doc, account=account, partition=partition)
    sources: dict[str, set[str]] = {}
    for source, g in needed(doc, phases):
        for a in g.actions:
            sources.setdefault(a, set()).add(source)
    return DeployerPolicy(documents=policies(doc, t, phases),
                          sources={a: sorted(s) for a, s in sorted(sources.items())})
