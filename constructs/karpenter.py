"""Karpenter layer: interruption queue, controller role (IRSA or Pod Identity), Karpenter by Helm and its NodePools.

Creates:
- the **interruption queue** (SQS, named after the cluster, 300 s retention, SQS-managed SSE) with a
  policy letting EventBridge/SQS send and denying any non-TLS access, and the **five EventBridge
  rules** of Karpenter 1.14.1's getting-started template (AWS Health events, Spot interruption
  warnings, rebalance recommendations, instance state changes, capacity-reservation interruption
  warnings) targeting it: Karpenter drains nodes before AWS takes them away. Rule names are
  ``<name>-karpenter-<short>`` so they fit EventBridge's 64 characters at the longest cluster name;
- the **controller role** for ``system:serviceaccount:karpenter:karpenter`` (``constructs.iam.ServiceAccountRole``:
  IRSA, or with ``pod_identity`` EKS Pod Identity and its association) carrying upstream 1.14.1's five
  controller policies (``constructs.iam.karpenter_controller_policies``). Order is queue -> policies ->
  role, so nothing refers back (no cycle);
- namespace ``karpenter`` and service account ``karpenter``, annotated with the role ARN under IRSA only
  (Kubernetes provider), after the role, its policies and (Pod Identity) the association and the agent, so
  no pod starts without credentials. With Pod Identity the chart's pod template carries
  ``platform/pod-credentials``, so a switch of ``cluster.pod_credentials`` rolls the controller (EKS injects
  credentials at pod creation) after the association exists and the annotation is gone;
- Helm releases from ``oci://public.ecr.aws/karpenter`` at ``karpenter.version``: ``karpenter-crd``
  (CRDs stay upgradable; Helm never upgrades CRDs inside a chart) and ``karpenter`` with
  ``skip_crds``. Values (``model.karpenter.controller_values``; every key exists in the 1.14.1
  chart): cluster name/endpoint, the queue *name*, the pre-created service account, controller
  resources, replicas (never above the controller node count: the chart wants one replica per
  node), scheduling onto the controller node group, and ``dnsPolicy: Default`` so Karpenter resolves
  AWS endpoints through the VPC resolver even while CoreDNS is not yet running. ``atomic``: a failed
  upgrade rolls back to the last working release; ``wait`` with a timeout so the NodePools only go
  in once the controller (and its validation) is up;
- the **NodePools and EC2NodeClass** as a third release of the local chart ``charts/karpenter-nodepools``
  whose values are manifests built from typed config (``model.karpenter``; ``kubernetes_manifest``
  needs the CRDs at *plan* time and fails a first apply; Helm is lazy).

Destroy order (Terraform destroys in reverse dependency order only): the NodePools release goes
first, while Karpenter still runs to drain and terminate the nodes it launched: its uninstall waits
until the NodePools and EC2NodeClass are deleted (its Helm timeout is the longest pool
``termination_grace_period`` plus 10 minutes, or ``helm_timeout_seconds`` if longer); in ``exec``
mode a destroy-time wait (aws CLI, up to 10 minutes) then holds the Karpenter release until EC2
reports those instances terminated.
Every release and Kubernetes object here depends on the network's ``egress`` (NAT, routes, IGW),
the controller node group, the node access entry and role, the admins' access entries, the
security-group discovery tag, the add-ons (pod networking, the Pod Identity agent, and the EBS CSI
driver with its credentials and StorageClass: a node is not terminated while its volumes are attached) and
the controller's IAM (and association),
so none of those is torn down while Karpenter's finalizers still call EC2 and IAM.

Takes ``config`` (KarpenterConfig), ``name``, ``replicas``, the stack's ``tags`` (for the nodes),
``wait_for_node_cleanup``, ``pod_identity`` and the ``network``, ``cluster``, ``iam`` and ``addons`` layers (the region comes
from ``iam.aws``); the Kubernetes/Helm providers are created by the stack. Exposes ``queue``,
``controller_role``, ``controller_association`` (or None), ``release``, ``nodepools_release``, ``manifests``
(the NodePool/EC2NodeClass objects as Python dicts) and ``checks``: the ``check`` block that warns at plan when it
deletes a running NodePool (``model.karpenter.removed_pools_check``), which the stack writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from cdktf import AssetType, DataResource, LocalExecProvisioner, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from constructs import Construct

from constructs.addons import Addons
from constructs.cluster import Cluster
from constructs.iam import Iam, ServiceAccountRole, karpenter_controller_policies
from constructs.network import Network
from constructs.policy import policy_document
from model import names
from model.karpenter import (KarpenterConfig, controller_values, ec2_node_class, longest_drain_seconds, node_pool,
                             removed_pools_check, to_yaml)

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
CHART_REPOSITORY = "oci://public.ecr.aws/karpenter"
NODEPOOLS_CHART = Path(__file__).resolve().parent.parent / "charts" / "karpenter-nodepools"

# logical key -> (event source, detail-type, rule-name suffix); the suffixes fit model.names' template.
INTERRUPTION_EVENTS = {
    "health": ("aws.health", "AWS Health Event", "health"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning", "spot"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation", "rebalance"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification", "state"),
    "capacity-reservation": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning", "capacity"),
}

# Destroy-time wait (sh + aws CLI) until every instance Karpenter launched for this cluster is gone.
# The NodePools release's uninstall waits for its objects to be deleted (their finalizers clear once
# the NodeClaims are gone), but a NodeClaim is gone before EC2 has finished terminating its instance;
# without this, Terraform would remove the Karpenter release while instances still shut down, and a
# VPC destroy would then fail on their network interfaces.
NODE_CLEANUP_WAIT = """set -eu
for attempt in $(seq 1 "$ATTEMPTS"); do
  count=$(aws ec2 describe-instances --region "$REGION" --output text \\
    --filters "Name=tag:kubernetes.io/cluster/$CLUSTER,Values=owned" "Name=tag-key,Values=karpenter.sh/nodepool" \\
              "Name=instance-state-name,Values=pending,running,stopping,shutting-down" \\
    --query 'length(Reservations[].Instances[])')
  [ "$count" = "0" ] && exit 0
  echo "waiting for $count Karpenter-launched instance(s) of $CLUSTER to terminate ($attempt/$ATTEMPTS)"
  sleep 10
done
echo "Karpenter-launched instances of $CLUSTER still run after $ATTEMPTS checks 10 s apart: terminate them (tag karpenter.sh/nodepool), then destroy again" >&2
exit 1
"""
CLEANUP_MARGIN_SECONDS = 600


class Karpenter(Construct):
    """Interruption queue + rules, controller role, namespace/service account, Helm releases."""

    def __init__(self, scope: Construct, id_: str, *, config: KarpenterConfig, name: str, replicas: int,
                 tags: dict[str, str], network: Network, cluster: Cluster, iam: Iam, addons: Addons,
                 wait_for_node_cleanup: bool, pod_identity: bool = False) -> None:
        super().__init__(scope, id_)
        # what must outlive every Kubernetes object and release here (see the module docstring)
        keep = [*addons.in_cluster, cluster.node_access_entry, *iam.node_role_attachments, cluster.discovery_tag,
                addons.addons["aws-ebs-csi-driver"], *addons.ebs_csi_credentials, addons.storage_class]

        # ---- interruption handling
        self.queue = SqsQueue(self, "interruption-queue", name=names.derived("queue", name), message_retention_seconds=300,
                              sqs_managed_sse_enabled=True)
        queue_policy = policy_document(self, "interruption-queue-policy-doc", [
            {
                "Sid": "EventBridgeAndSqsSend",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": self.queue.arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": self.queue.arn,
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            },
        ])
        SqsQueuePolicy(self, "interruption-queue-policy", queue_url=self.queue.url, policy=queue_policy.json)
        for key, (source, detail_type, suffix) in INTERRUPTION_EVENTS.items():
            rule = CloudwatchEventRule(self, f"rule-{key}", name=f"{name}-karpenter-{suffix}",
                                       description=f"Karpenter interruption handling: {detail_type}",
                                       event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}))
            CloudwatchEventTarget(self, f"rule-{key}-target", rule=rule.name, target_id="KarpenterInterruptionQueueTarget",
                                  arn=self.queue.arn)

        # ---- controller identity
        identity = ServiceAccountRole(
            self, "controller", role_name=names.derived("controller_role", name), cluster_name=cluster.name,
            cluster_arn=cluster.arn, oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_host=cluster.oidc_issuer_host, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
            pod_identity=pod_identity,
            policies=karpenter_controller_policies(self, "controller-policy-doc", cluster_name=name, aws=iam.aws,
                                                   node_role_arn=iam.node_role.arn, queue_arn=self.queue.arn))
        self.controller_role = identity.role
        self.controller_association = identity.association

        keep += identity.credentials
        namespace = NamespaceV1(self, "namespace", metadata={"name": NAMESPACE}, depends_on=keep)
        # IRSA: the annotation names the role. Pod Identity: no annotation (the association does it; with both,
        # the SDKs would take the IRSA web identity first).
        annotations = {} if pod_identity else {"eks.amazonaws.com/role-arn": self.controller_role.arn}
        service_account = ServiceAccountV1(self, "service-account", metadata={
            "name": SERVICE_ACCOUNT, "namespace": namespace.metadata.name, **({"annotations": annotations}
                                                                               if annotations else {}),
        }, depends_on=keep)

        # ---- Helm releases: CRDs, controller, then NodePools
        crds = Release(self, "crd-release", name="karpenter-crd", repository=CHART_REPOSITORY, chart="karpenter-crd",
                       version=config.version, namespace=namespace.metadata.name, wait=True,
                       timeout=config.helm_timeout_seconds, cleanup_on_fail=True, depends_on=keep)
        values = controller_values(name=name, endpoint=cluster.endpoint, queue_name=self.queue.name,
                                   replicas=replicas, service_account=SERVICE_ACCOUNT, config=config,
                                   pod_credentials="pod_identity" if pod_identity else "irsa")
        self.release = Release(
            self, "release", name="karpenter", repository=CHART_REPOSITORY, chart="karpenter",
            version=config.version, namespace=namespace.metadata.name, skip_crds=True,
            values=[to_yaml(values)],
            wait=True, timeout=config.helm_timeout_seconds, atomic=True, cleanup_on_fail=True,
            depends_on=[cluster.cluster, service_account, crds, *keep],
        )

        self.manifests = [ec2_node_class(name=name, role_name=iam.node_role.name, config=config, tags=tags,
                                         subnet_ids=network.node_subnet_ids)]
        self.manifests += [node_pool(pool_name, pool) for pool_name, pool in config.nodepools.items()]
        # a plan that removes a running pool says so in words (the stack writes the check blocks)
        self.checks = {"nodepools-removed": removed_pools_check(list(config.nodepools),
                                                                [f"helm_release.{crds.friendly_unique_id}"])}
        after_karpenter = [self.release]
        if wait_for_node_cleanup:
            # Destroyed after the NodePools release and before the Karpenter release (see NODE_CLEANUP_WAIT).
            attempts = CLEANUP_MARGIN_SECONDS // 10  # the drain itself was waited for by the NodePools release
            waiter = DataResource(self, "node-cleanup-wait",
                                  input={"cluster": name, "region": iam.aws.region, "attempts": str(attempts)},
                                  depends_on=[self.release, *keep], provisioners=[LocalExecProvisioner(
                                      type="local-exec", when="destroy", command=NODE_CLEANUP_WAIT,
                                      environment={"CLUSTER": "${self.input.cluster}",
                                                   "REGION": "${self.input.region}",
                                                   "ATTEMPTS": "${self.input.attempts}"})])
            after_karpenter.append(waiter)
        chart = TerraformAsset(self, "nodepools-chart", path=str(NODEPOOLS_CHART), type=AssetType.DIRECTORY)
        # Its uninstall waits (wait=true) until the NodePools and EC2NodeClass are gone, i.e. until
        # every node has drained: allow the longest termination grace period plus a margin.
        drain_budget = longest_drain_seconds(config) + CLEANUP_MARGIN_SECONDS
        self.nodepools_release = Release(
            self, "nodepools-release", name="karpenter-nodepools", chart=chart.path,
            namespace=namespace.metadata.name,
            values=[to_yaml({"manifests": self.manifests})],
            wait=True, timeout=max(config.helm_timeout_seconds, drain_budget), atomic=True, cleanup_on_fail=True,
            depends_on=[*after_karpenter, *keep],
        )
