"""Karpenter layer: interruption queue, controller IRSA role, Karpenter by Helm and its NodePools.

Creates:
- the **interruption queue** (SQS, named after the cluster, 300 s retention, SQS-managed SSE) with a
  policy letting EventBridge/SQS send and denying any non-TLS access, and **four EventBridge rules**
  (AWS Health events, Spot interruption warnings, rebalance recommendations, instance state
  changes) targeting it: Karpenter drains nodes before AWS takes them away;
- the **controller role** (IRSA for ``system:serviceaccount:karpenter:karpenter``) carrying the
  upstream v1.1 controller policy (``constructs.iam.karpenter_controller_policy``). Order is
  queue -> policy -> role, so nothing refers back (no cycle);
- namespace ``karpenter`` and service account ``karpenter`` annotated with the role ARN
  (Kubernetes provider), so the role exists before any pod can start;
- Helm releases from ``oci://public.ecr.aws/karpenter`` at ``karpenter.version``: ``karpenter-crd``
  (CRDs stay upgradable; Helm never upgrades CRDs inside a chart) and ``karpenter`` with
  ``skip_crds``. Values (all present in the 1.1.0 chart; no ``webhook.*``): cluster name/endpoint,
  the queue *name*, the pre-created service account, controller resources, replicas (never above
  the controller node count: the chart wants one replica per node), scheduling onto the controller
  node group, and ``dnsPolicy: Default`` so Karpenter resolves AWS endpoints through the VPC
  resolver even while CoreDNS is not yet running (the first nodes CoreDNS could use may be
  Karpenter's own). ``atomic``: a failed upgrade rolls back to the last working release instead of
  leaving the autoscaler half-upgraded; ``wait`` with a timeout so the NodePools only go in once the
  controller (and its validation) is up;
- the **NodePools and EC2NodeClass** as a third release of the local chart ``charts/karpenter-nodepools``
  whose values are manifests built here from typed config (``kubernetes_manifest`` needs the CRDs
  at *plan* time and fails a first apply; Helm is lazy). It depends on the Karpenter release, so on
  destroy the NodePools go first and Karpenter still runs to terminate the nodes it launched; in
  ``exec`` mode (the aws CLI is there) a destroy-time wait holds the Karpenter release until those
  instances are gone (Helm's uninstall does not wait).

Takes ``config`` (KarpenterConfig), ``name``, ``replicas``, the stack's ``tags`` (for the nodes),
``wait_for_node_cleanup`` and the ``cluster`` and ``iam`` layers (the region comes from
``iam.aws``); the Kubernetes/Helm providers are created by the stack. Exposes ``queue``,
``controller_role``, ``release``, ``nodepools_release`` and ``manifests`` (the NodePool/EC2NodeClass
objects as Python dicts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from cdktf import AssetType, DataResource, LocalExecProvisioner, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1
from cdktf_cdktf_provider_kubernetes.service_account_v1 import ServiceAccountV1
from constructs import Construct

from constructs.cluster import CONTROLLER_LABEL, CONTROLLER_TAINT, Cluster
from constructs.iam import Iam, IrsaRole, karpenter_controller_policy
from constructs.policy import policy_document
from stacks.config import KarpenterConfig, NodePoolConfig

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
CHART_REPOSITORY = "oci://public.ecr.aws/karpenter"
NODEPOOLS_CHART = Path(__file__).resolve().parent.parent / "charts" / "karpenter-nodepools"
NODE_CLASS = "default"

INTERRUPTION_EVENTS = {
    "health": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
}

# Destroy-time wait (sh + aws CLI) until every instance Karpenter launched for this cluster is gone.
# Helm returns from an uninstall at once; without this, Terraform would remove the Karpenter release
# right after the NodePools release, the NodeClaims' finalizers would never run, and the instances
# would keep running in the subnets (VPC destroy then fails on their network interfaces).
NODE_CLEANUP_WAIT = """set -eu
for attempt in $(seq 1 90); do
  count=$(aws ec2 describe-instances --region "$REGION" --output text \\
    --filters "Name=tag:kubernetes.io/cluster/$CLUSTER,Values=owned" "Name=tag-key,Values=karpenter.sh/nodepool" \\
              "Name=instance-state-name,Values=pending,running,stopping,shutting-down" \\
    --query 'length(Reservations[].Instances[])')
  [ "$count" = "0" ] && exit 0
  echo "waiting for $count Karpenter-launched instance(s) of $CLUSTER to terminate ($attempt/90)"
  sleep 10
done
echo "Karpenter-launched instances of $CLUSTER still run after 15 minutes: terminate them (tag karpenter.sh/nodepool), then destroy again" >&2
exit 1
"""


class _Dumper(yaml.SafeDumper):
    """Plain YAML for Helm values: no &anchors/*aliases for repeated objects."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False)


def _taint(spec: str) -> dict[str, str]:
    """``key=value:Effect`` (value optional) -> a Kubernetes taint."""
    key_value, effect = spec.rsplit(":", 1)
    key, _, value = key_value.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def ec2_node_class(*, name: str, role_name: str, config: KarpenterConfig, tags: dict[str, str]) -> dict[str, Any]:
    """The EC2NodeClass every pool uses (karpenter.k8s.aws/v1)."""
    discovery = [{"tags": {"karpenter.sh/discovery": name}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS},
        "spec": {
            "role": role_name,
            "amiSelectorTerms": [{"alias": config.ami_alias}],
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
            # IMDSv2 only, one hop: pods (one hop further away) cannot reach the node's credentials.
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
                "volumeSize": f"{config.root_volume_size_gi}Gi", "volumeType": "gp3", "encrypted": True,
                "deleteOnTermination": True}}],
            "tags": {"karpenter.sh/discovery": name, **tags},
        },
    }


def node_pool(pool_name: str, pool: NodePoolConfig) -> dict[str, Any]:
    """One NodePool (karpenter.sh/v1) from its typed config."""
    requirements: list[dict[str, Any]] = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    if pool.instance_categories:
        requirements.append({"key": "karpenter.k8s.aws/instance-category", "operator": "In",
                             "values": list(pool.instance_categories)})
    if pool.instance_families:
        requirements.append({"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                             "values": list(pool.instance_families)})
    if pool.min_generation is not None:
        requirements.append({"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt",
                             "values": [str(pool.min_generation - 1)]})
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
        "requirements": requirements,
        "expireAfter": pool.expire_after,
    }
    if pool.taints:
        template_spec["taints"] = [_taint(t) for t in pool.taints]
    spec: dict[str, Any] = {
        "template": {"metadata": {"labels": {"karpenter.sh/pool": pool_name, **pool.labels}}, "spec": template_spec},
        "disruption": {"consolidationPolicy": pool.consolidation_policy, "consolidateAfter": pool.consolidate_after,
                       "budgets": [{"nodes": pool.disruption_budget_nodes}]},
        "limits": {"cpu": str(pool.cpu_limit), "memory": f"{pool.memory_limit_gi}Gi"},
    }
    if pool.weight is not None:
        spec["weight"] = pool.weight
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": pool_name}, "spec": spec}


def controller_values(*, name: str, endpoint: str, queue_name: str, replicas: int,
                      config: KarpenterConfig) -> dict[str, Any]:
    """Values for the karpenter chart. Every key exists in the 1.1.0 chart's values.yaml."""
    resources = {"cpu": config.controller_resources.cpu, "memory": config.controller_resources.memory}
    return {
        "settings": {"clusterName": name, "clusterEndpoint": endpoint, "interruptionQueue": queue_name},
        "serviceAccount": {"create": False, "name": SERVICE_ACCOUNT},
        "replicas": replicas,
        "dnsPolicy": "Default",
        "nodeSelector": {"kubernetes.io/os": "linux", **CONTROLLER_LABEL},
        # tolerates the controller node group's taint (EKS spells NO_SCHEDULE, Kubernetes NoSchedule)
        "tolerations": [{"key": CONTROLLER_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
        "controller": {"resources": {"requests": resources, "limits": resources}},
        "logLevel": config.log_level,
    }


class Karpenter(Construct):
    """Interruption queue + rules, controller IRSA role, namespace/service account, Helm releases."""

    def __init__(self, scope: Construct, id_: str, *, config: KarpenterConfig, name: str, replicas: int,
                 tags: dict[str, str], cluster: Cluster, iam: Iam, wait_for_node_cleanup: bool) -> None:
        super().__init__(scope, id_)

        # ---- interruption handling
        self.queue = SqsQueue(self, "interruption-queue", name=name, message_retention_seconds=300,
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
        for key, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = CloudwatchEventRule(self, f"rule-{key}", name=f"{name}-karpenter-{key}",
                                       description=f"Karpenter interruption handling: {detail_type}",
                                       event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}))
            CloudwatchEventTarget(self, f"rule-{key}-target", rule=rule.name, target_id="KarpenterInterruptionQueueTarget",
                                  arn=self.queue.arn)

        # ---- controller identity
        policy_json = karpenter_controller_policy(self, "controller-policy-doc", cluster_name=name, aws=iam.aws,
                                                  node_role_arn=iam.node_role.arn, queue_arn=self.queue.arn)
        irsa = IrsaRole(self, "controller", role_name=f"KarpenterController-{name}",
                        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer_host=cluster.oidc_issuer_host,
                        namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                        policies={f"KarpenterControllerPolicy-{name}": policy_json})
        self.controller_role = irsa.role

        namespace = NamespaceV1(self, "namespace", metadata={"name": NAMESPACE})
        service_account = ServiceAccountV1(self, "service-account", metadata={
            "name": SERVICE_ACCOUNT,
            "namespace": namespace.metadata.name,
            "annotations": {"eks.amazonaws.com/role-arn": self.controller_role.arn},
        })

        # ---- Helm releases: CRDs, controller, then NodePools
        crds = Release(self, "crd-release", name="karpenter-crd", repository=CHART_REPOSITORY, chart="karpenter-crd",
                       version=config.version, namespace=namespace.metadata.name, wait=True,
                       timeout=config.helm_timeout_seconds, cleanup_on_fail=True)
        values = controller_values(name=name, endpoint=cluster.endpoint, queue_name=self.queue.name,
                                   replicas=replicas, config=config)
        self.release = Release(
            self, "release", name="karpenter", repository=CHART_REPOSITORY, chart="karpenter",
            version=config.version, namespace=namespace.metadata.name, skip_crds=True,
            values=[to_yaml(values)],
            wait=True, timeout=config.helm_timeout_seconds, atomic=True, cleanup_on_fail=True,
            depends_on=[cluster.cluster, cluster.node_access_entry, cluster.node_group, service_account, crds,
                        *irsa.attachments],
        )

        self.manifests = [ec2_node_class(name=name, role_name=iam.node_role.name, config=config, tags=tags)]
        self.manifests += [node_pool(pool_name, pool) for pool_name, pool in config.nodepools.items()]
        after_karpenter = [self.release]
        if wait_for_node_cleanup:
            # Destroyed after the NodePools release and before the Karpenter release (see NODE_CLEANUP_WAIT).
            waiter = DataResource(self, "node-cleanup-wait", input={"cluster": name, "region": iam.aws.region},
                                  depends_on=[self.release], provisioners=[LocalExecProvisioner(
                                      type="local-exec", when="destroy", command=NODE_CLEANUP_WAIT,
                                      environment={"CLUSTER": "${self.input.cluster}",
                                                   "REGION": "${self.input.region}"})])
            after_karpenter.append(waiter)
        chart = TerraformAsset(self, "nodepools-chart", path=str(NODEPOOLS_CHART), type=AssetType.DIRECTORY)
        self.nodepools_release = Release(
            self, "nodepools-release", name="karpenter-nodepools", chart=chart.path,
            namespace=namespace.metadata.name,
            values=[to_yaml({"manifests": self.manifests})],
            wait=True, timeout=config.helm_timeout_seconds, atomic=True, cleanup_on_fail=True,
            depends_on=after_karpenter,
        )
