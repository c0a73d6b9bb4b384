"""The real-Helm rung: the synthesized ``helm_release`` values, read and rendered by Helm itself.

The other Karpenter tests check the values as data. Here the pinned Helm 3 (tests/helm.py) lints and
renders the charts with exactly the values strings Terraform will pass, so what is checked is what
the cluster would receive: keys the chart ignores, YAML that Go reads differently from PyYAML, and
chart defaults that our values override or not.

* ``karpenter-nodepools`` (ours): lints, and renders exactly the NodePools / EC2NodeClass the stack
  built, for every stack.
* ``karpenter`` 1.14.1 (upstream, vendored in tests/fixtures/karpenter-1.14.1/chart): every value key
  we set exists in its values.yaml, and the rendered Deployment runs on the controller node group,
  as the stack's service account, against the stack's cluster and queue, one replica per node.
* Negative cases show the rung catches the defects it is here for.

Terraform references in values (``${aws_eks_cluster....endpoint}``) stay as strings: Helm renders
them verbatim, and the tests assert on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import helm as helm_tool
from tests.conftest import ROOT, load_yaml, one, resources
from tests.variants import VARIANTS

CHART_1_14_1 = ROOT / "tests" / "fixtures" / "karpenter-1.14.1" / "chart"
NODEPOOLS_CHART = ROOT / "charts" / "karpenter-nodepools"
SHIPPED = ("dev", "prod")  # the environments; t-alt deliberately pins another Karpenter version

# EKS spells taint effects in its API enum; Kubernetes (and so tolerations) in CamelCase.
EKS_TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
HARD_EFFECTS = {"NoSchedule", "NoExecute"}  # a pod that does not tolerate these cannot run on the node
# Value maps whose keys are data (label names), not chart settings: below them any key is fine.
FREE_FORM = {"nodeSelector"}


# ----------------------------------------------------------------------------- reading the stack


def release_namespace(doc: dict, release: dict) -> str:
    """The release's namespace as Helm gets it: a literal, or the namespace resource it refers to."""
    expr = release["namespace"]
    match = re.fullmatch(r"\$\{kubernetes_namespace_v1\.([\w-]+)\.metadata\[0\]\.name\}", expr)
    if match is None:
        assert "${" not in expr, f"unexpected namespace reference {expr}"
        return expr
    return resources(doc, "kubernetes_namespace_v1")[match.group(1)]["metadata"]["name"]


def karpenter_release(doc: dict) -> dict:
    (release,) = [r for r in resources(doc, "helm_release").values() if r["chart"] == "karpenter"]
    return release


def controller_node_group(doc: dict) -> dict:
    return one(doc, "aws_eks_node_group", "controller")


def node_labels(node_group: dict) -> dict[str, str]:
    """The labels a node of this EKS node group carries: its own plus those kubelet and EKS set."""
    ami = node_group.get("ami_type", "AL2_x86_64")
    return {
        "kubernetes.io/os": "windows" if ami.startswith("WINDOWS") else "linux",
        "kubernetes.io/arch": "arm64" if "ARM_64" in ami else "amd64",
        "eks.amazonaws.com/nodegroup": node_group.get("node_group_name") or node_group["node_group_name_prefix"] + "<suffix>",
        **node_group.get("labels", {}),
    }


def node_taints(node_group: dict) -> list[dict[str, str]]:
    """The node group's taints, in Kubernetes spelling."""
    return [{"key": t["key"], "value": t.get("value", ""), "effect": EKS_TAINT_EFFECTS[t["effect"]]}
            for t in node_group.get("taint", [])]


def tolerates(toleration: dict, taint: dict) -> bool:
    """Kubernetes' ToleratesTaint: effect and key match where set; ``Exists`` ignores the value."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return toleration.get("value", "") == taint.get("value", "")


def unknown_keys(ours: dict, chart: dict, prefix: str = "") -> set[str]:
    """Key paths in ``ours`` that the chart's values.yaml does not have. Below an empty map (``{}``,
    e.g. ``controller.resources``) or a :data:`FREE_FORM` map any key is the user's data."""
    unknown = set()
    for key, value in ours.items():
        path = f"{prefix}{key}"
        if key not in chart:
            unknown.add(path)
        elif isinstance(value, dict) and isinstance(chart[key], dict) and chart[key] and path not in FREE_FORM:
            unknown |= unknown_keys(value, chart[key], f"{path}.")
    return unknown


def by_kind_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    keyed = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert len(keyed) == len(objects), "two objects share a kind and name"
    return keyed


def only(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@dataclass(frozen=True)
class Rendered:
    """One stack's Karpenter release and what Helm renders of the 1.14.1 chart with its values."""

    doc: dict
    release: dict
    namespace: str
    objects: list[dict]

    @property
    def pod(self) -> dict:
        return only(self.objects, "Deployment")["spec"]["template"]["spec"]

    @property
    def env(self) -> dict[str, str]:
        (container,) = [c for c in self.pod["containers"] if c["name"] == "controller"]
        return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def render_karpenter(helm: helm_tool.Helm, doc: dict, values: list[str] | None = None) -> Rendered:
    """The 1.14.1 chart rendered like the stack's release would install it (namespace, CRDs skipped or
    not, the cluster's Kubernetes version); ``values`` replaces the release's values."""
    release = karpenter_release(doc)
    namespace = release_namespace(doc, release)
    objects = helm.template(CHART_1_14_1, release["values"] if values is None else values, release=release["name"],
                            namespace=namespace, kube_version=one(doc, "aws_eks_cluster")["version"],
                            skip_crds=release.get("skip_crds", False))
    return Rendered(doc, release, namespace, objects)


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request: pytest.FixtureRequest, synth, helm) -> Rendered:
    return render_karpenter(helm, synth[request.param])


# ----------------------------------------------------------------------------- karpenter-nodepools


def _nodepools_release(doc: dict) -> dict:
    return one(doc, "helm_release", "nodepools-release")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", VARIANTS)
def test_nodepools_release_installs_our_chart(synth, stack):
    """The chart the release points at is the stack output's copy of charts/karpenter-nodepools."""
    chart = synth.outdir / "stacks" / stack / _nodepools_release(synth[stack])["chart"]
    assert _files(chart) == _files(NODEPOOLS_CHART)


@pytest.mark.parametrize("stack", VARIANTS)
def test_nodepools_chart_lints_with_the_release_values(synth, helm, stack):
    doc = synth[stack]
    helm.lint(NODEPOOLS_CHART, _nodepools_release(doc)["values"], kube_version=one(doc, "aws_eks_cluster")["version"])


@pytest.mark.parametrize("stack", VARIANTS)
def test_nodepools_chart_renders_exactly_the_manifests_the_stack_built(synth, helm, stack):
    doc = synth[stack]
    release = _nodepools_release(doc)
    (values,) = release["values"]
    built = load_yaml(values)["manifests"]
    objects = helm.template(NODEPOOLS_CHART, values, release=release["name"], namespace=release_namespace(doc, release),
                            kube_version=one(doc, "aws_eks_cluster")["version"])
    assert by_kind_name(objects) == by_kind_name(built)
    assert len(objects) == len(built) and {o["kind"] for o in objects} == {"EC2NodeClass", "NodePool"}


# ----------------------------------------------------------------------------- karpenter 1.14.1: values


@pytest.mark.parametrize("stack", SHIPPED)
def test_shipped_environments_install_the_chart_version_tested_here(synth, stack):
    """The rendering below is evidence only for the chart the release installs."""
    chart_version = load_yaml((CHART_1_14_1 / "Chart.yaml").read_text())["version"]
    assert karpenter_release(synth[stack])["version"] == chart_version


@pytest.mark.parametrize("stack", VARIANTS)
def test_every_value_key_we_set_exists_in_the_1_14_1_chart(synth, stack):
    """Helm ignores a key the chart does not read (a typo renders silently), so each must be known."""
    (values,) = karpenter_release(synth[stack])["values"]
    assert unknown_keys(load_yaml(values), load_yaml((CHART_1_14_1 / "values.yaml").read_text())) == set()


@pytest.mark.parametrize("stack", VARIANTS)
def test_karpenter_chart_lints_with_the_release_values(synth, helm, stack):
    doc = synth[stack]
    helm.lint(CHART_1_14_1, karpenter_release(doc)["values"], kube_version=one(doc, "aws_eks_cluster")["version"])


# ----------------------------------------------------------------------------- karpenter 1.14.1: rendered


def test_controller_renders_into_the_karpenter_namespace_without_crds(rendered):
    """Everything namespaced goes to the release namespace, except the chart's read access to the
    kube-dns Service (a Role and RoleBinding that must live in kube-system)."""
    assert rendered.namespace == "karpenter"
    elsewhere = {(o["kind"], o["metadata"]["namespace"]) for o in rendered.objects
                 if o["metadata"].get("namespace", "karpenter") != "karpenter"}
    assert elsewhere == {("Role", "kube-system"), ("RoleBinding", "kube-system")}
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= {
        o["kind"] for o in rendered.objects if o["metadata"].get("namespace") == "karpenter"}
    assert rendered.release["skip_crds"] is True  # the karpenter-crd release owns them
    assert not [o for o in rendered.objects if o["kind"] == "CustomResourceDefinition"]


def test_controller_pods_select_the_controller_node_group(rendered):
    group = controller_node_group(rendered.doc)
    selector = rendered.pod["nodeSelector"]
    assert selector.items() <= node_labels(group).items(), "a node of the group must satisfy the selector"
    assert group["labels"].items() <= selector.items(), "the selector must pin the pods to this group"
    # and the chart's default node affinity (kept: we set none) keeps them off the nodes Karpenter launches
    (term,) = rendered.pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]


def test_controller_pods_tolerate_every_hard_taint_of_the_controller_node_group(rendered):
    taints = [t for t in node_taints(controller_node_group(rendered.doc)) if t["effect"] in HARD_EFFECTS]
    assert taints, "the controller node group is expected to be tainted"
    for taint in taints:
        assert any(tolerates(t, taint) for t in rendered.pod["tolerations"]), f"{taint} is not tolerated"


def test_controller_runs_as_the_stack_service_account_and_the_chart_creates_none(rendered):
    account = one(rendered.doc, "kubernetes_service_account_v1")["metadata"]
    assert rendered.pod["serviceAccountName"] == account["name"]
    assert release_namespace(rendered.doc, account) == rendered.namespace  # a pod can only use its namespace's
    assert not [o for o in rendered.objects if o["kind"] == "ServiceAccount"]


def test_controller_env_names_the_stack_cluster_endpoint_and_queue(rendered):
    doc = rendered.doc
    cluster_key, cluster = next(iter(resources(doc, "aws_eks_cluster").items()))
    queue_key = next(iter(resources(doc, "aws_sqs_queue")))
    env = rendered.env
    assert env["CLUSTER_NAME"] == cluster["name"]
    assert env["CLUSTER_ENDPOINT"] == f"${{aws_eks_cluster.{cluster_key}.endpoint}}"
    assert env["INTERRUPTION_QUEUE"] == f"${{aws_sqs_queue.{queue_key}.name}}"


def test_controller_replicas_fit_one_per_controller_node(rendered):
    """The chart requires pod anti-affinity on the hostname, so each replica needs its own node."""
    deployment = only(rendered.objects, "Deployment")
    (anti,) = rendered.pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert 1 <= deployment["spec"]["replicas"] <= controller_node_group(rendered.doc)["scaling_config"]["min_size"]


def test_controller_resolves_dns_through_the_vpc_resolver(rendered):
    assert rendered.pod["dnsPolicy"] == "Default"


# ----------------------------------------------------------------------------- the rung catches defects


def _edited(values_text: str, edit) -> str:
    values = load_yaml(values_text)
    edit(values)
    return yaml.safe_dump(values, sort_keys=False)


def test_an_eks_spelled_toleration_effect_is_caught(synth, helm):
    """``NO_SCHEDULE`` (how EKS spells the node group's taint) renders fine and tolerates nothing."""
    doc = synth["dev"]
    (values,) = karpenter_release(doc)["values"]
    bad = _edited(values, lambda v: v["tolerations"][0].update(effect="NO_SCHEDULE"))
    pod = render_karpenter(helm, doc, [bad]).pod
    (taint,) = node_taints(controller_node_group(doc))
    assert not any(tolerates(t, taint) for t in pod["tolerations"])


def test_a_typo_in_a_value_key_is_caught(synth, helm):
    """``nodeSelectors`` is ignored by the chart: the pods fall back to its default selector."""
    doc = synth["dev"]
    (values,) = karpenter_release(doc)["values"]
    bad = _edited(values, lambda v: v.__setitem__("nodeSelectors", v.pop("nodeSelector")))
    chart_values = load_yaml((CHART_1_14_1 / "values.yaml").read_text())
    assert unknown_keys(load_yaml(bad), chart_values) == {"nodeSelectors"}
    selector = render_karpenter(helm, doc, [bad]).pod["nodeSelector"]
    assert not controller_node_group(doc)["labels"].items() <= selector.items()


def test_a_manifest_helm_reads_differently_is_caught(synth, helm):
    """PyYAML writes the label value ``y`` unquoted; Helm's YAML 1.1 reads it as the boolean true
    (and a Kubernetes label value must be a string), so the render differs from what was built."""
    doc = synth["dev"]
    release = _nodepools_release(doc)
    (values,) = release["values"]
    bad = _edited(values, lambda v: v["manifests"][1]["spec"]["template"]["metadata"]["labels"].update(spot="y"))
    built = load_yaml(bad)["manifests"]
    objects = helm.template(NODEPOOLS_CHART, bad, release=release["name"], namespace="karpenter")
    assert by_kind_name(objects) != by_kind_name(built)
    pool = by_kind_name(objects)[("NodePool", built[1]["metadata"]["name"])]
    assert pool["spec"]["template"]["metadata"]["labels"]["spot"] is True


def test_pod_identity_controller_renders_without_a_role_annotation(synth, helm):
    """The 1.14.1 chart rendered with t-alt's values (Pod Identity): the chart creates no service account
    (the stack's, which has no annotation), nothing rendered names an IAM role, and the pod template carries
    the mode annotation that restarts the controller on a switch. podAnnotations exists in the chart."""
    chart_values = load_yaml((CHART_1_14_1 / "values.yaml").read_text())
    assert chart_values["podAnnotations"] == {}
    doc = synth["t-alt"]
    (values,) = karpenter_release(doc)["values"]
    objects = helm.template(CHART_1_14_1, [values], release="karpenter", namespace="karpenter",
                            kube_version="1.32", skip_crds=True)
    assert not [o for o in objects if o["kind"] == "ServiceAccount"]
    assert "eks.amazonaws.com/role-arn" not in yaml.safe_dump(objects)
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["platform/pod-credentials"] == "pod_identity"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "karpenter"
