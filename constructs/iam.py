"""IAM layer: the roles the cluster, its nodes and Karpenter run as.

Creates:
- the **cluster role** (trusted by ``eks.amazonaws.com``) with ``AmazonEKSClusterPolicy`` and an
  inline grant on the secrets KMS key. ``AmazonEKSVPCResourceController`` is deliberately not
  attached: it only serves security groups for pods / Windows nodes, neither of which this platform
  enables (least privilege; attach it when you enable them);
- the **Karpenter node role** ``KarpenterNodeRole-<name>`` (trusted by ``ec2.amazonaws.com``) with
  exactly the four managed policies upstream Karpenter 1.14.1's ``KarpenterNodeRole`` has
  (``NODE_POLICIES``; images are pulled with ``AmazonEC2ContainerRegistryPullOnly``, not the wider
  ``...ReadOnly``). Its name is stable because the EC2NodeClass refers to it by name;
- the **controller node role** for the managed node group that hosts Karpenter and CoreDNS, with the
  same four policies (its nodes only pull images too: ``PullOnly`` suffices, ``ReadOnly``'s extra
  repository listing/describing is not needed). It is a separate role on purpose: EKS creates an
  access entry for a managed node group's role by itself, so sharing the Karpenter node role would
  collide with the explicit ``EC2_LINUX`` access entry the cluster layer creates for Karpenter's
  nodes (and deleting the node group would remove the entry Karpenter's nodes depend on).

Also provides two building blocks used downstream: ``ServiceAccountRole`` (a role assumable only by one
Kubernetes service account, through the cluster's OIDC provider (IRSA) or EKS Pod Identity) and ``karpenter_controller_policies``
(upstream Karpenter 1.14.1's controller policies: NodeLifecycle, IAMIntegration, EKSIntegration,
Interruption and ResourceDiscovery, as separate managed policies like upstream; upstream's opt-in
ZonalShift policy is not shipped because this product does not expose zonal shift). The policies
take the queue ARN as an argument, so the Karpenter layer creates queue -> policies -> role and
nothing points back: no cycle.

Takes the cluster ``name``, the ``aws`` context (account, partition, region) and the KMS key ARN.
Exposes ``cluster_role``, ``node_role``, ``controller_node_role`` and the policy attachments the
cluster must wait for (``cluster_role_attachments``, ``controller_node_role_attachments``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktf_cdktf_provider_aws.iam_policy import IamPolicy
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from constructs.policy import AwsContext, policy_document, service_trust
from model import names

# Upstream Karpenter 1.14.1's KarpenterNodeRole managed policies, in the template's order.
NODE_POLICIES = (
    "AmazonEKS_CNI_Policy",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)


def _attach(scope: Construct, role: IamRole, prefix: str, partition: str,
            policies: Sequence[str]) -> list[IamRolePolicyAttachment]:
    """Attach AWS-managed ``policies`` (names under ``policy/``, a path allowed: ``service-role/X``)."""
    return [
        IamRolePolicyAttachment(scope, f"{prefix}-{policy.rsplit('/', 1)[-1]}", role=role.name,
                                policy_arn=f"arn:{partition}:iam::aws:policy/{policy}")
        for policy in policies
    ]


class Iam(Construct):
    """Cluster role, Karpenter node role, controller node role."""

    def __init__(self, scope: Construct, id_: str, *, name: str, aws: AwsContext, kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        self.aws = aws

        self.cluster_role = IamRole(self, "cluster-role", name=names.derived("cluster_role", name),
                                    assume_role_policy=service_trust(self, "cluster-trust", "eks.amazonaws.com"))
        self.cluster_role_attachments = _attach(self, self.cluster_role, "cluster", aws.partition,
                                                ["AmazonEKSClusterPolicy"])
        kms_use = policy_document(self, "cluster-kms", [{
            "Sid": "EncryptClusterSecrets",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": kms_key_arn,
        }])
        self.cluster_role_attachments.append(
            IamRolePolicy(self, "cluster-kms-policy", name="secrets-encryption", role=self.cluster_role.id,
                          policy=kms_use.json))

        ec2_trust = service_trust(self, "ec2-trust", "ec2.amazonaws.com")
        self.node_role = IamRole(self, "karpenter-node-role", name=names.derived("node_role", name),
                                 assume_role_policy=ec2_trust)
        self.node_role_attachments = _attach(self, self.node_role, "karpenter-node", aws.partition, NODE_POLICIES)

        self.controller_node_role = IamRole(self, "controller-node-role",
                                            name=names.derived("controller_node_role", name),
                                            assume_role_policy=ec2_trust)
        self.controller_node_role_attachments = _attach(self, self.controller_node_role, "controller-node",
                                                        aws.partition, NODE_POLICIES)


class ServiceAccountRole(Construct):
    """An IAM role only one Kubernetes service account can assume: through IRSA or EKS Pod Identity.

    ``pod_identity`` false (IRSA): trust ``sts:AssumeRoleWithWebIdentity`` from the cluster's OIDC
    provider, ``StringEquals`` on ``<issuer>:sub = system:serviceaccount:<namespace>:<service_account>`` and
    ``<issuer>:aud = sts.amazonaws.com``; ``role.arn`` goes into the service account's annotation.
    ``pod_identity`` true (DESIGN fact 29): trust ``pods.eks.amazonaws.com`` with ``sts:AssumeRole`` and
    ``sts:TagSession``, as narrow as the IRSA trust: ``StringEquals`` on the session tags EKS sets
    (``aws:RequestTag/eks-cluster-arn``, ``kubernetes-namespace``, ``kubernetes-service-account``; EKS user
    guide, "Create IAM role with trust policy required by EKS Pod Identity"), so no other cluster's (another
    region's of the same name included) or service account's association can use the role; plus the
    **association** (``aws_eks_pod_identity_association``) of the service account with the role, and no
    annotation. Same role, same logical ids either way: a switch updates the trust in place.

    ``policies`` are attached as customer-managed policies, ``aws_managed`` (names under
    ``arn:<partition>:iam::aws:policy/``) as AWS-managed ones. Exposes ``role``, ``attachments``, ``association``
    (or None) and ``credentials`` (attachments and association: what a pod of the service account needs from
    before it starts until it is gone)."""

    def __init__(self, scope: Construct, id_: str, *, role_name: str, cluster_name: str, oidc_provider_arn: str,
                 oidc_issuer_host: str, namespace: str, service_account: str, pod_identity: bool,
                 cluster_arn: str, policies: dict[str, str] | None = None, aws_managed: Sequence[str] = (),
                 partition: str = "aws") -> None:
        super().__init__(scope, id_)
        if pod_identity:
            statement = {
                "Sid": "EksPodIdentity",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Condition": {"StringEquals": {
                    "aws:RequestTag/eks-cluster-arn": cluster_arn,
                    "aws:RequestTag/kubernetes-namespace": namespace,
                    "aws:RequestTag/kubernetes-service-account": service_account,
                }},
            }
        else:
            statement = {
                "Effect": "Allow",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Principal": {"Federated": oidc_provider_arn},
                "Condition": {"StringEquals": {
                    f"{oidc_issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{oidc_issuer_host}:aud": "sts.amazonaws.com",
                }},
            }
        trust = policy_document(self, "trust", [statement])
        self.role = IamRole(self, "role", name=role_name, assume_role_policy=trust.json)
        self.policies: dict[str, IamPolicy] = {}
        self.attachments: list[IamRolePolicyAttachment] = _attach(self, self.role, "managed", partition, aws_managed)
        for policy_name, document in (policies or {}).items():
            policy = IamPolicy(self, f"policy-{policy_name}", name=policy_name, policy=document)
            self.attachments.append(
                IamRolePolicyAttachment(self, f"attach-{policy_name}", role=self.role.name, policy_arn=policy.arn))
            self.policies[policy_name] = policy
        self.association: EksPodIdentityAssociation | None = None
        if pod_identity:
            self.association = EksPodIdentityAssociation(
                self, "pod-identity-association", cluster_name=cluster_name, namespace=namespace,
                service_account=service_account, role_arn=self.role.arn)
        self.credentials: list[Construct] = [*self.attachments, *([self.association] if self.association else [])]


def karpenter_controller_policies(scope: Construct, id_: str, *, cluster_name: str, aws: AwsContext,
                                  node_role_arn: str, queue_arn: str) -> dict[str, str]:
    """Upstream Karpenter 1.14.1's controller policies (getting-started CloudFormation), as
    ``{IAM policy name: policy JSON}`` in the template's order.

    Since 1.9 upstream splits the controller's permissions over several managed policies (one
    policy had hit IAM's 6,144-character limit): ``KarpenterControllerNodeLifecyclePolicy-<cluster>``
    (launch, tag and terminate instances), ``...IAMIntegrationPolicy-`` (PassRole on the node role,
    instance profiles), ``...EKSIntegrationPolicy-`` (API server endpoint discovery),
    ``...InterruptionPolicy-`` (the interruption queue) and ``...ResourceDiscoveryPolicy-`` (regional
    reads, SSM, pricing, instance profile reads). Same statements, Sids, actions, resources and
    conditions as upstream; ARNs region- and account-scoped as there.

    Upstream's opt-in ``KarpenterControllerZonalShiftPolicy`` (``arc-zonal-shift:GetManagedResource``)
    is deliberately left out: this product does not expose zonal shift, so the controller gets no
    permission for it. One ``data.aws_iam_policy_document`` per policy, ids ``<id_>-<short name>``."""
    p, r, a, c = aws.partition, aws.region, aws.account_id, cluster_name
    ec2 = f"arn:{p}:ec2:{r}"
    profile = f"arn:{p}:iam::{a}:instance-profile/*"
    owned = f"kubernetes.io/cluster/{c}"
    tagged_kinds = ["fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request"]
    statements: dict[tuple[str, str], list[dict]] = {
        ("node-lifecycle", f"KarpenterControllerNodeLifecyclePolicy-{c}"): [
            {
                "Sid": "AllowScopedEC2InstanceAccessActions",
                "Resource": [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                             f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*"],
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            },
            {
                "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
                "Resource": f"{ec2}:*:launch-template/*",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "AllowScopedEC2InstanceActionsWithTags",
                "Resource": [f"{ec2}:*:{kind}/*" for kind in tagged_kinds],
                "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                "Condition": {
                    "StringEquals": {f"aws:RequestTag/{owned}": "owned", "aws:RequestTag/eks:eks-cluster-name": c},
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "AllowScopedResourceCreationTagging",
                "Resource": [f"{ec2}:*:{kind}/*" for kind in tagged_kinds],
                "Action": "ec2:CreateTags",
                "Condition": {
                    "StringEquals": {
                        f"aws:RequestTag/{owned}": "owned",
                        "aws:RequestTag/eks:eks-cluster-name": c,
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "AllowScopedResourceTagging",
                "Resource": f"{ec2}:*:instance/*",
                "Action": "ec2:CreateTags",
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                    "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": c},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]},
                },
            },
            {
                "Sid": "AllowScopedDeletion",
                "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
                    "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                },
            },
        ],
        ("iam-integration", f"KarpenterControllerIAMIntegrationPolicy-{c}"): [
            {
                "Sid": "AllowPassingInstanceRole",
                "Resource": node_role_arn,
                "Action": "iam:PassRole",
                "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
            },
            {
                "Sid": "AllowScopedInstanceProfileCreationActions",
                "Resource": profile,
                "Action": ["iam:CreateInstanceProfile"],
                "Condition": {
                    "StringEquals": {
                        f"aws:RequestTag/{owned}": "owned",
                        "aws:RequestTag/eks:eks-cluster-name": c,
                        "aws:RequestTag/topology.kubernetes.io/region": r,
                    },
                    "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
            {
                "Sid": "AllowScopedInstanceProfileTagActions",
                "Resource": profile,
                "Action": ["iam:TagInstanceProfile"],
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/{owned}": "owned",
                        "aws:ResourceTag/topology.kubernetes.io/region": r,
                        f"aws:RequestTag/{owned}": "owned",
                        "aws:RequestTag/eks:eks-cluster-name": c,
                        "aws:RequestTag/topology.kubernetes.io/region": r,
                    },
                    "StringLike": {
                        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                        "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    },
                },
            },
            {
                "Sid": "AllowScopedInstanceProfileActions",
                "Resource": profile,
                "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                           "iam:DeleteInstanceProfile"],
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/{owned}": "owned",
                        "aws:ResourceTag/topology.kubernetes.io/region": r,
                    },
                    "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
        ],
        ("eks-integration", f"KarpenterControllerEKSIntegrationPolicy-{c}"): [
            {
                "Sid": "AllowAPIServerEndpointDiscovery",
                "Resource": f"arn:{p}:eks:{r}:{a}:cluster/{c}",
                "Action": "eks:DescribeCluster",
            },
        ],
        ("interruption", f"KarpenterControllerInterruptionPolicy-{c}"): [
            {
                "Sid": "AllowInterruptionQueueActions",
                "Resource": queue_arn,
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            },
        ],
        # (upstream's ZonalShift policy would come here: not shipped, see the docstring)
        ("resource-discovery", f"KarpenterControllerResourceDiscoveryPolicy-{c}"): [
            {
                "Sid": "AllowRegionalReadActions",
                "Resource": "*",
                "Action": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                           "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings",
                           "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups",
                           "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
                "Condition": {"StringEquals": {"aws:RequestedRegion": r}},
            },
            {
                "Sid": "AllowSSMReadActions",
                "Resource": f"arn:{p}:ssm:{r}::parameter/aws/service/*",
                "Action": "ssm:GetParameter",
            },
            {"Sid": "AllowPricingReadActions", "Resource": "*", "Action": "pricing:GetProducts"},
            {"Sid": "AllowUnscopedInstanceProfileListAction", "Resource": "*", "Action": "iam:ListInstanceProfiles"},
            {"Sid": "AllowInstanceProfileReadActions", "Resource": profile, "Action": "iam:GetInstanceProfile"},
        ],
    }
    return {policy_name: policy_document(scope, f"{id_}-{short}", stmts).json
            for (short, policy_name), stmts in statements.items()}
