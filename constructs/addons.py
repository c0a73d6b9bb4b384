"""Add-ons layer: what the cluster and each NodePool need to run their workloads.

Creates:
- the EKS managed add-ons **vpc-cni**, **kube-proxy** and **coredns**, each at the version pinned
  for the configured Kubernetes version (``model/versions.py``, with ``cluster.addon_versions`` over
  it; never EKS's default resolved at plan, which AWS moves under a running cluster, so an unrelated
  apply would upgrade them). They depend on the controller node group, which takes
  the cluster's ``version`` attribute: a control-plane step updates the control plane, then the
  node group, then the add-ons, in one apply. EKS installs self-managed copies with a new cluster;
  ``OVERWRITE`` adopts them. CoreDNS runs on the controller node group (node selector + its taint's toleration), so DNS never
  depends on nodes Karpenter may consolidate away;
- the **aws-ebs-csi-driver** add-on with its own role (``AmazonEBSCSIDriverPolicy``, trusted only by
  ``kube-system:ebs-csi-controller-sa``: IRSA through the add-on's ``service_account_role_arn``, or with
  ``pod_identity`` an association; its controller on the controller nodes) and an
  encrypted **gp3 StorageClass** marked default, bound when the pod is scheduled
  (``WaitForFirstConsumer``: the volume is created in the pod's AZ). Without them a database on the
  stateful pool stays Pending on a node that costs money (EKS 1.30+ marks no class default);
- the **NVIDIA device plugin** (Helm, pinned) when a pool can launch NVIDIA GPU instances: the
  AL2023 NVIDIA AMI has the driver but not the plugin, so no node would advertise
  ``nvidia.com/gpu``. It runs only on NVIDIA GPU nodes (Karpenter's
  ``karpenter.k8s.aws/instance-gpu-manufacturer`` label) and tolerates any taint they carry.

With ``pod_identity`` also the **eks-pod-identity-agent** add-on (pinned like the others; a DaemonSet on
every node, tolerating every taint, so on the controller nodes too), which the EBS CSI add-on and every
in-cluster resource wait for.

A plan-time guard reads the running vpc-cni (where the cluster and its node group run) and refuses a
version more than one minor above it, naming the minors to step through, or below it: EKS refuses
such an update half-way through the apply.

Every add-on waits for the controller node group (CoreDNS and the EBS CSI controller need a node to
become ACTIVE). The Kubernetes and Helm resources also depend on the network's ``egress`` and the
node group, so a destroy removes them while the cluster can still be reached and act.

Takes ``name``, the ``network``, ``cluster`` and ``iam`` layers, ``nvidia_device_plugin`` (bool),
``versions`` (``{add-on: version}``) and ``pod_identity`` (bool);
the Kubernetes/Helm providers are created by the stack. Exposes ``addons`` (by name), ``networking``
(vpc-cni, kube-proxy, coredns), ``in_cluster`` (what every in-cluster resource needs until it is
gone: egress, the controller node group, admin access, pod networking),
``ebs_csi_role``, ``ebs_csi_credentials`` (its policy and association), ``storage_class`` and
``device_plugin`` (or None).
"""

from __future__ import annotations

import json

from cdktf import Postcondition, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.data_aws_eks_addon import DataAwsEksAddon
from cdktf_cdktf_provider_aws.data_aws_eks_node_groups import DataAwsEksNodeGroups
from cdktf_cdktf_provider_aws.eks_addon import EksAddon
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.storage_class_v1 import StorageClassV1
from constructs import Construct

from constructs.cluster import Cluster
from constructs.iam import Iam, ServiceAccountRole
from constructs.network import Network
from model import names
from model.tags import VOLUME_CLUSTER_TAG
from model.versions import (NVIDIA_DEVICE_PLUGIN_REPOSITORY, NVIDIA_DEVICE_PLUGIN_VERSION, POD_IDENTITY_AGENT, addon_rank,
                            addon_rank_hcl, installed_addons, vpc_cni_minor)
from model.cluster import CONTROLLER_LABEL, CONTROLLER_TOLERATION
from model.karpenter import pod_credentials_annotations, to_yaml

EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
STORAGE_CLASS = "gp3"
ON_CONTROLLER_NODES = {"nodeSelector": dict(CONTROLLER_LABEL), "tolerations": [dict(CONTROLLER_TOLERATION)]}


def addon_configuration(addon: str, cluster_name: str | None = None, pod_credentials: str = "irsa") -> dict | None:
    """The add-on's ``configuration_values`` (EKS validates them against the add-on's schema), or None.

    vpc-cni gets none: its schema's ``env`` takes no ``CLUSTER_NAME`` (``additionalProperties: false``;
    tests/fixtures/vpc-cni/), so the CNI's leaked interfaces may carry no cluster tag, and the sweep
    also finds them by the node they were made for (``model.teardown``).

    The EBS CSI controller tags every volume it creates ``Cluster=<name>`` (``controller.extraVolumeTags``),
    the identity tag every resource of the stack carries: its own ``ebs.csi.aws.com/cluster=true`` does not
    tell clusters apart, and a destroy lists the volumes it keeps by both (``constructs.teardown``). Not
    ``kubernetes.io/cluster/<name>``: the driver refuses extra tags in the ``kubernetes.io`` domain
    (``Volume tag key prefix 'kubernetes.io' is reserved``, and its controller would not start). Volumes
    created before the tag was set lack it."""
    if addon == "coredns":
        return dict(ON_CONTROLLER_NODES)
    if addon == "aws-ebs-csi-driver":
        tags = {"extraVolumeTags": {VOLUME_CLUSTER_TAG: cluster_name}} if cluster_name else {}
        # a switch of pod_credentials restarts the controller (a changed pod template), which picks up the
        # new credentials: EKS injects them when a pod is created
        annotations = pod_credentials_annotations(pod_credentials)
        return {"controller": {**ON_CONTROLLER_NODES, **tags, **({"podAnnotations": annotations} if annotations else {})}}
    if addon == POD_IDENTITY_AGENT:
        # a DaemonSet: the agent must run on every node whose pods use Pod Identity, the tainted controller
        # nodes (Karpenter, the EBS CSI controller) included. Tolerating every taint is the add-on's default;
        # set here so that a change of the default cannot take it off the controller nodes.
        return {"tolerations": [{"operator": "Exists"}]}
    return None


def device_plugin_values() -> dict:
    """NVIDIA device plugin chart values: NVIDIA GPU nodes only, whatever their taints."""
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "In",
                                   "values": ["nvidia"]}]}]}}},
        "tolerations": [{"operator": "Exists"}],
    }


class Addons(Construct):
    """EKS add-ons (vpc-cni, kube-proxy, coredns, EBS CSI + its role, the Pod Identity agent), gp3 StorageClass,
    NVIDIA plugin."""

    def __init__(self, scope: Construct, id_: str, *, name: str, network: Network, cluster: Cluster, iam: Iam,
                 nvidia_device_plugin: bool, versions: dict[str, str], pod_identity: bool = False) -> None:
        super().__init__(scope, id_)
        ebs = ServiceAccountRole(self, "ebs-csi", role_name=names.derived("ebs_csi_role", name),
                                 cluster_name=cluster.name, cluster_arn=cluster.arn,
                                 oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer_host=cluster.oidc_issuer_host,
                                 namespace="kube-system", service_account=EBS_CSI_SERVICE_ACCOUNT,
                                 pod_identity=pod_identity, aws_managed=["service-role/AmazonEBSCSIDriverPolicy"],
                                 partition=iam.aws.partition)
        self.ebs_csi_role = ebs.role
        self.ebs_csi_credentials: list[Construct] = ebs.credentials
        pod_credentials = "pod_identity" if pod_identity else "irsa"

        self._vpc_cni_steps(name, cluster, versions["vpc-cni"])
        self.addons: dict[str, EksAddon] = {}
        for addon in installed_addons(pod_identity):
            settings = addon_configuration(addon, name, pod_credentials)
            needs: list = [cluster.node_group]
            if addon == "aws-ebs-csi-driver":  # its controller starts with its credentials in place
                needs += [*ebs.credentials, *([self.addons[POD_IDENTITY_AGENT]] if pod_identity else [])]
            self.addons[addon] = EksAddon(
                self, addon, cluster_name=cluster.name, addon_name=addon, addon_version=versions[addon],
                resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                configuration_values=json.dumps(settings, sort_keys=True) if settings else None,
                service_account_role_arn=ebs.role.arn if addon == "aws-ebs-csi-driver" and not pod_identity else None,
                depends_on=needs,
            )

        self.networking = [self.addons[a] for a in ("vpc-cni", "kube-proxy", "coredns")]
        # with Pod Identity, the agent serves every pod's credentials until the last in-cluster resource is gone
        agent = [self.addons[POD_IDENTITY_AGENT]] if pod_identity else []
        self.in_cluster: list[Construct] = [*network.egress, cluster.node_group, *cluster.admin_access,
                                            *self.networking, *agent]
        self.storage_class = StorageClassV1(
            self, "gp3-storage-class",
            metadata={"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            storage_provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "fsType": "ext4"},
            reclaim_policy="Delete", volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True,
            depends_on=[self.addons["aws-ebs-csi-driver"], *self.in_cluster],
        )

        self.device_plugin: Release | None = None
        if nvidia_device_plugin:
            self.device_plugin = Release(
                self, "nvidia-device-plugin", name="nvidia-device-plugin",
                repository=NVIDIA_DEVICE_PLUGIN_REPOSITORY, chart="nvidia-device-plugin",
                version=NVIDIA_DEVICE_PLUGIN_VERSION, namespace="kube-system",
                values=[to_yaml(device_plugin_values())], wait=True, atomic=True, cleanup_on_fail=True,
                depends_on=self.in_cluster,
            )

    def _vpc_cni_steps(self, name: str, cluster: Cluster, target: str) -> None:
        """Refuse at plan a vpc-cni version more than one minor above what runs, or below it: EKS refuses
        the update half-way through the apply ("Updating VPC-CNI can only go up or down 1 minor version at
        a time", terraform-aws-eks#2749; the platform never moves an add-on down). The running version is
        read only where the cluster and its controller node group exist (the add-ons are created right
        after the group, so a first apply, or one interrupted before, reads nothing)."""
        groups = DataAwsEksNodeGroups(self, "running-node-groups", cluster_name=name,
                                      count=Token.as_number(f"${{{cluster.exists_expression} ? 1 : 0}}"))
        ours = (f'[for n in flatten(data.aws_eks_node_groups.{groups.friendly_unique_id}[*].names) : n '
                f'if startswith(n, "{names.CONTROLLER_NODE_GROUP_PREFIX}")]')
        running = DataAwsEksAddon(self, "running-vpc-cni", cluster_name=name, addon_name="vpc-cni",
                                  count=Token.as_number(f"${{length({ours}) > 0 ? 1 : 0}}"))
        target_minor = vpc_cni_minor(target)
        minor = 'tonumber(split(".", self.addon_version)[1])'
        steps = f'join(", then ", [for m in range({minor} + 1, {target_minor}) : "v1.${{m}}"])'
        fix = ("(aws eks describe-addon-versions --addon-name vpc-cni --kubernetes-version <cluster.version> lists "
               "the builds of each)")
        running.lifecycle = TerraformResourceLifecycle(postcondition=[
            Postcondition(
                condition=f"${{{target_minor} <= {minor} + 1}}",
                error_message=f"cluster.addon_versions: vpc-cni {target} is more than one minor version above the "
                              f"running ${{self.addon_version}}, and EKS moves vpc-cni one minor version at a time "
                              f"(the update would fail half-way through the apply). Set cluster.addon_versions."
                              f"vpc-cni to the latest build of ${{{steps}}} in turn, one apply each {fix}, then "
                              "remove it to reach the platform's pin."),
            Postcondition(
                condition=f"${{{addon_rank(target)} >= {addon_rank_hcl('self.addon_version')}}}",
                error_message=f"cluster.addon_versions: vpc-cni {target} is below the running ${{self.addon_version}}: "
                              "the platform never moves an add-on down. Set cluster.addon_versions.vpc-cni to "
                              "${self.addon_version} (or a newer build), then plan again."),
        ])
