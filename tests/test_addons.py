"""Add-ons layer: EKS managed add-ons that follow the cluster's version, EBS CSI with its own
identity and a default encrypted gp3 StorageClass, and the NVIDIA device plugin for GPU pools."""

from __future__ import annotations

import json

import pytest

from model.karpenter import KarpenterConfig, NodePoolConfig
from tests.conftest import conditions, load_yaml, one, policy_statements, ref_id, resources

ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")


def _addons(doc) -> dict[str, dict]:
    return {a["addon_name"]: a for a in resources(doc, "aws_eks_addon").values()}


def test_the_four_managed_addons_adopt_what_eks_installed(env_json):
    addons = _addons(env_json)
    assert sorted(addons) == sorted(ADDONS)
    cluster_key = next(iter(resources(env_json, "aws_eks_cluster")))
    for addon in addons.values():
        assert addon["cluster_name"] == f"${{aws_eks_cluster.{cluster_key}.name}}"
        assert addon["resolve_conflicts_on_create"] == addon["resolve_conflicts_on_update"] == "OVERWRITE"


def test_addon_versions_are_pinned_for_the_clusters_version(env_json):
    """Each version is the pin for the configured Kubernetes version (model/versions.py), a literal:
    never EKS's default read at plan, which AWS moves under a running cluster (issue 15). The add-on
    waits for the node group, which waits for the control plane: one step, in order."""
    from model.versions import ADDON_VERSIONS

    group = next(iter(resources(env_json, "aws_eks_node_group")))
    assert "aws_eks_addon_version" not in env_json.get("data", {})
    for name, addon in _addons(env_json).items():
        assert addon["addon_version"] == ADDON_VERSIONS["1.36"][name]
        assert f"aws_eks_node_group.{group}" in addon["depends_on"]


def test_node_group_follows_the_cluster_version(env_json):
    cluster_key = next(iter(resources(env_json, "aws_eks_cluster")))
    assert one(env_json, "aws_eks_node_group")["version"] == f"${{aws_eks_cluster.{cluster_key}.version}}"


def test_addons_wait_for_the_controller_nodes(env_json):
    group = next(iter(resources(env_json, "aws_eks_node_group")))
    for addon in _addons(env_json).values():
        assert f"aws_eks_node_group.{group}" in addon["depends_on"]


def test_coredns_and_the_ebs_csi_controller_run_on_the_controller_nodes(env_json):
    placement = {"nodeSelector": {"karpenter.sh/controller": "true"},
                 "tolerations": [{"effect": "NoSchedule", "key": "CriticalAddonsOnly", "operator": "Exists"}]}
    addons = _addons(env_json)
    assert json.loads(addons["coredns"]["configuration_values"]) == placement
    controller = json.loads(addons["aws-ebs-csi-driver"]["configuration_values"])["controller"]
    assert {k: controller[k] for k in placement} == placement
    assert "configuration_values" not in addons["vpc-cni"] and "configuration_values" not in addons["kube-proxy"]


def test_ebs_csi_volumes_are_tagged_for_their_cluster(env_json):
    """``ebs.csi.aws.com/cluster=true`` is the same on every cluster: the controller adds
    ``Cluster=<name>``, by which a destroy lists the PVC volumes it keeps (constructs/teardown.py); never a
    ``kubernetes.io`` key, which the driver refuses (its controller would not start)."""
    name = one(env_json, "aws_eks_cluster")["name"]
    controller = json.loads(_addons(env_json)["aws-ebs-csi-driver"]["configuration_values"])["controller"]
    assert controller["extraVolumeTags"] == {"Cluster": name}
    assert not any(k.startswith(("kubernetes.io", "aws:")) or k == "CSIVolumeName" for k in controller["extraVolumeTags"])
    assert set(controller) == {"nodeSelector", "tolerations", "extraVolumeTags"}  # keys of the add-on's schema


def test_ebs_csi_driver_has_its_own_least_privilege_identity(env_json):
    addon = _addons(env_json)["aws-ebs-csi-driver"]
    rtype, role_key = ref_id(addon["service_account_role_arn"])
    assert rtype == "aws_iam_role"
    role = resources(env_json, "aws_iam_role")[role_key]
    assert role["name"] == f"{one(env_json, 'aws_eks_cluster')['name']}-ebs-csi-driver"
    (trust,) = policy_statements(env_json, role["assume_role_policy"])
    subjects = {v for (test, var), vals in conditions(trust).items() if var.endswith(":sub") for v in vals}
    assert subjects == {"system:serviceaccount:kube-system:ebs-csi-controller-sa"}
    attached = [a["policy_arn"] for a in resources(env_json, "aws_iam_role_policy_attachment").values()
                if a["role"] == f"${{aws_iam_role.{role_key}.name}}"]
    assert attached == ["arn:${data.aws_partition.partition.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]


def test_default_storage_class_is_encrypted_gp3_bound_where_the_pod_lands(env_json):
    sc = one(env_json, "kubernetes_storage_class_v1")
    assert sc["metadata"] == {"name": "gp3", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
    assert sc["storage_provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true", "fsType": "ext4"}
    assert sc["volume_binding_mode"] == "WaitForFirstConsumer" and sc["allow_volume_expansion"] is True
    assert any(d.startswith("aws_eks_addon.") for d in sc["depends_on"])


def test_nvidia_device_plugin_runs_only_on_nvidia_gpu_nodes_whatever_their_taints(env_json):
    release = one(env_json, "helm_release", "nvidia-device-plugin")
    assert release["repository"] == "https://nvidia.github.io/k8s-device-plugin"
    assert release["chart"] == "nvidia-device-plugin" and release["version"] == "0.19.2"
    assert release["namespace"] == "kube-system"
    (values,) = release["values"]
    values = load_yaml(values)
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "In",
                                            "values": ["nvidia"]}]}]
    assert values["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.parametrize("pool,gpu", [
    (NodePoolConfig(instance_families=("g5", "g6")), True),
    (NodePoolConfig(instance_categories=("p",)), True),
    (NodePoolConfig(instance_families=("p5",)), True),
    (NodePoolConfig(instance_categories=("c", "m")), False),
    (NodePoolConfig(instance_families=("gr6", "m7g")), False),  # gr6: memory-optimised Graviton, not a GPU
])
def test_the_device_plugin_is_installed_only_when_a_pool_can_launch_nvidia_gpus(pool, gpu):
    assert KarpenterConfig(nodepools={"x": pool}).may_launch_nvidia_gpus is gpu


def test_pod_identity_installs_the_pinned_agent_on_every_node_and_the_ebs_driver_without_irsa(synth):
    """Pod Identity (t-alt): the eks-pod-identity-agent add-on at the pin for the cluster's minor, tolerating
    every taint (a DaemonSet: the controller nodes, where Karpenter and the EBS CSI controller run, included);
    the EBS CSI add-on names no IRSA role, waits for its association and the agent, and its controller's pod
    template names the mode (a switch restarts it, so it picks up the new credentials)."""
    from model.versions import ADDON_VERSIONS

    doc = synth["t-alt"]
    addons = _addons(doc)
    assert sorted(addons) == sorted((*ADDONS, "eks-pod-identity-agent"))
    agent = addons["eks-pod-identity-agent"]
    assert agent["addon_version"] == ADDON_VERSIONS["1.32"]["eks-pod-identity-agent"] == "v1.3.10-eksbuild.2"
    assert json.loads(agent["configuration_values"]) == {"tolerations": [{"operator": "Exists"}]}
    ebs = addons["aws-ebs-csi-driver"]
    assert "service_account_role_arn" not in ebs
    (association_key,) = [k for k, a in resources(doc, "aws_eks_pod_identity_association").items()
                          if a["service_account"] == "ebs-csi-controller-sa"]
    agent_key = next(k for k, a in resources(doc, "aws_eks_addon").items() if a["addon_name"] == "eks-pod-identity-agent")
    assert {f"aws_eks_pod_identity_association.{association_key}", f"aws_eks_addon.{agent_key}"} <= set(ebs["depends_on"])
    controller = json.loads(ebs["configuration_values"])["controller"]
    assert controller["podAnnotations"] == {"platform/pod-credentials": "pod_identity"}
    # IRSA (the default): no agent, the role on the add-on, no annotation (an existing environment's pods stay)
    for stack in ("dev", "prod"):
        irsa = _addons(synth[stack])
        assert "eks-pod-identity-agent" not in irsa
        assert irsa["aws-ebs-csi-driver"]["service_account_role_arn"].startswith("${aws_iam_role.")
        assert "podAnnotations" not in json.loads(irsa["aws-ebs-csi-driver"]["configuration_values"])["controller"]


def test_addon_ranks_order_eks_builds_as_eks_does():
    from model.versions import addon_rank

    ordered = ["v1.19.6-eksbuild.7", "v1.20.1-eksbuild.3", "v1.20.1-eksbuild.12", "v1.20.10-eksbuild.1",
               "v1.22.4-eksbuild.3", "v1.23.1-eksbuild.1"]
    assert sorted(ordered, key=addon_rank) == ordered
