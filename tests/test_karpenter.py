"""Karpenter layer: interruption queue + rules, providers, service account, Helm releases, NodePools."""

from __future__ import annotations

import functools
import json
import re

import jsonschema
import pytest

from stacks.config import StackConfig
from tests.cloudformation import load_template
from tests.conftest import ROOT, conditions, load_yaml, one, policy_statements, ref_id, resources

FIXTURES = ROOT / "tests" / "fixtures" / "karpenter-1.14.1" / "chart"


# ----------------------------------------------------------------------------- interruption queue


def test_queue_is_named_after_the_cluster_with_short_retention_and_sse(env_json):
    queue = one(env_json, "aws_sqs_queue")
    assert queue["name"] == one(env_json, "aws_eks_cluster")["name"]
    assert queue["message_retention_seconds"] == 300
    assert queue["sqs_managed_sse_enabled"] is True


def test_queue_policy_allows_eventbridge_and_denies_plain_http(env_json):
    policy = one(env_json, "aws_sqs_queue_policy")
    allow, deny = policy_statements(env_json, policy["policy"])
    assert allow["effect"] == "Allow" and allow["actions"] == ["sqs:SendMessage"]
    assert allow["principals"] == [{"type": "Service", "identifiers": ["events.amazonaws.com", "sqs.amazonaws.com"]}]
    assert deny["effect"] == "Deny" and deny["actions"] == ["sqs:*"]
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert conditions(deny) == {("Bool", "aws:SecureTransport"): ["false"]}
    queue_key = next(iter(resources(env_json, "aws_sqs_queue")))
    assert allow["resources"] == deny["resources"] == [f"${{aws_sqs_queue.{queue_key}.arn}}"]


def test_five_eventbridge_rules_of_1_14_target_the_queue(env_json):
    rules = resources(env_json, "aws_cloudwatch_event_rule")
    patterns = sorted((p["source"][0], p["detail-type"][0]) for p in (json.loads(r["event_pattern"]) for r in rules.values()))
    assert patterns == [
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.health", "AWS Health Event"),
    ]
    targets = resources(env_json, "aws_cloudwatch_event_target")
    queue_key = next(iter(resources(env_json, "aws_sqs_queue")))
    assert len(targets) == 5
    assert {t["arn"] for t in targets.values()} == {f"${{aws_sqs_queue.{queue_key}.arn}}"}
    assert {ref_id(t["rule"])[1] for t in targets.values()} == set(rules)
    name = one(env_json, "aws_eks_cluster")["name"]
    assert sorted(r["name"] for r in rules.values()) == [
        f"{name}-karpenter-{s}" for s in ("capacity", "health", "rebalance", "spot", "state")]


def test_eventbridge_rules_match_the_upstream_1_14_1_template(env_json):
    """Every rule of the getting-started template, with its exact event pattern and target id."""
    template = load_template(ROOT / "tests" / "fixtures" / "karpenter-1.14.1" / "getting-started-cloudformation.yaml")
    upstream = {
        (block["Properties"]["EventPattern"]["source"][0], block["Properties"]["EventPattern"]["detail-type"][0])
        for block in template["Resources"].values() if block["Type"] == "AWS::Events::Rule"}
    ours = {(p["source"][0], p["detail-type"][0]) for p in
            (json.loads(r["event_pattern"]) for r in resources(env_json, "aws_cloudwatch_event_rule").values())}
    assert ours == upstream and len(upstream) == 5
    assert {t["target_id"] for t in resources(env_json, "aws_cloudwatch_event_target").values()} == {
        "KarpenterInterruptionQueueTarget"}


# ----------------------------------------------------------------------------- providers


EXEC_ARGS_HEAD = ["eks", "get-token", "--cluster-name"]


def test_providers_use_exec_auth_against_the_new_cluster(env_json):
    (kube,) = env_json["provider"]["kubernetes"]
    (helm,) = env_json["provider"]["helm"]
    for conf, exec_ in ((kube, kube["exec"][0]), (helm["kubernetes"], helm["kubernetes"]["exec"])):
        assert re.fullmatch(r"\$\{aws_eks_cluster\.\w+\.endpoint\}", conf["host"])
        assert conf["cluster_ca_certificate"].startswith("${base64decode(aws_eks_cluster.")
        assert exec_["command"] == "aws" and exec_["api_version"] == "client.authentication.k8s.io/v1beta1"
        assert exec_["args"][:3] == EXEC_ARGS_HEAD and exec_["args"][4:] == ["--region", "us-west-2", "--output", "json"]
        assert re.fullmatch(r"\$\{aws_eks_cluster\.\w+\.name\}", exec_["args"][3])
        assert "token" not in conf


def test_cloud_backend_switches_providers_to_token_auth(synth):
    doc = synth["t-cloud"]
    auth = doc["data"]["aws_eks_cluster_auth"]["cluster-auth"]
    # the literal name and a gate that changes only with the cluster's creation: read at plan on every
    # later plan (a reference to aws_eks_cluster defers it whenever the cluster has a change pending)
    assert auth["name"] == "platform-tfc" and auth["depends_on"] == ["terraform_data.cluster-auth-gate"]
    gate = doc["resource"]["terraform_data"]["cluster-auth-gate"]
    assert gate["lifecycle"] == {"ignore_changes": ["input"]}
    assert set(gate["input"]) == {"cluster", "nodes"} and "aws_eks_node_group." in gate["input"]["nodes"]
    (kube,) = doc["provider"]["kubernetes"]
    (helm,) = doc["provider"]["helm"]
    token = "${data.aws_eks_cluster_auth.cluster-auth.token}"
    assert kube["token"] == token and helm["kubernetes"]["token"] == token
    assert "exec" not in kube and "exec" not in helm["kubernetes"]


# ----------------------------------------------------------------------------- service account


def test_namespace_and_annotated_service_account(env_json):
    ns = one(env_json, "kubernetes_namespace_v1")
    assert ns["metadata"] == {"name": "karpenter"}
    sa = one(env_json, "kubernetes_service_account_v1")["metadata"]
    assert sa["name"] == "karpenter"
    role = sa["annotations"]["eks.amazonaws.com/role-arn"]
    rtype, key = ref_id(role)
    assert rtype == "aws_iam_role" and "karpenter_controller_role" in key


# ----------------------------------------------------------------------------- Helm releases


def _release(doc, chart_fragment):
    return one(doc, "helm_release", chart_fragment)


def _values(release) -> dict:
    (text,) = release["values"]
    return load_yaml(text)


@pytest.mark.parametrize("release_id,chart", [("crd-release", "karpenter-crd"), ("karpenter_release", "karpenter")])
def test_charts_come_from_the_oci_registry_at_the_configured_version(env_json, release_id, chart):
    release = _release(env_json, release_id)
    assert release["repository"] == "oci://public.ecr.aws/karpenter"
    assert release["chart"] == chart and release["name"] == chart and release["version"] == "1.14.1"
    assert release["namespace"].startswith("${kubernetes_namespace_v1.")
    assert release["wait"] is True and release["timeout"] == 900


def test_newer_karpenter_version_moves_both_charts(synth):
    doc = synth["t-alt"]
    assert {r["version"] for r in resources(doc, "helm_release").values() if r["chart"].startswith("karpenter")} == {"1.2.1"}


def test_main_chart_skips_crds_and_rolls_back_atomically(env_json):
    release = _release(env_json, "karpenter_release")
    assert release["skip_crds"] is True and release["atomic"] is True and release["cleanup_on_fail"] is True


def test_controller_values_exactly(synth):
    for stack, replicas in (("dev", 1), ("prod", 2)):
        doc = synth[stack]
        values = _values(_release(doc, "karpenter_release"))
        name = one(doc, "aws_eks_cluster")["name"]
        queue_key = next(iter(resources(doc, "aws_sqs_queue")))
        cluster_key = next(iter(resources(doc, "aws_eks_cluster")))
        assert values == {
            "settings": {"clusterName": name, "clusterEndpoint": f"${{aws_eks_cluster.{cluster_key}.endpoint}}",
                         "interruptionQueue": f"${{aws_sqs_queue.{queue_key}.name}}"},
            "serviceAccount": {"create": False, "name": "karpenter"},
            "replicas": replicas,
            "dnsPolicy": "Default",
            "nodeSelector": {"kubernetes.io/os": "linux", "karpenter.sh/controller": "true"},
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}],
            "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
            "logLevel": "info",
        }
        assert replicas <= one(doc, "aws_eks_node_group")["scaling_config"]["min_size"]


def _paths(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out.add(path)
        if isinstance(value, dict) and value:
            out |= _paths(value, f"{path}.")
    return out


def test_every_value_set_exists_in_the_1_14_1_chart(env_json):
    chart = load_yaml((FIXTURES / "values.yaml").read_text())
    ours = _values(_release(env_json, "karpenter_release"))
    known = _paths(chart) | {"controller.resources.requests", "controller.resources.limits",
                             "controller.resources.requests.cpu", "controller.resources.requests.memory",
                             "controller.resources.limits.cpu", "controller.resources.limits.memory",
                             "nodeSelector.karpenter.sh/controller"}
    assert _paths(ours) - known == set()
    assert "webhook" not in chart and "webhook" not in ours


def _kinds(deps: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for dep in deps:
        kinds[dep.split(".")[0]] = kinds.get(dep.split(".")[0], 0) + 1
    return kinds


def test_karpenter_release_depends_on_what_it_needs_to_run_and_to_uninstall(env_json):
    """To run: cluster, node group, node access, service account, CRDs, its IAM (five policies), the
    security group's discovery tag. To uninstall (finalizers call EC2/IAM): the egress path, the
    add-ons (pod networking; EBS CSI with its role's policy and its StorageClass, which detach volumes) and
    the node role's policies too."""
    deps = _release(env_json, "karpenter_release")["depends_on"]
    kinds = _kinds(deps)
    nats = len(resources(env_json, "aws_nat_gateway"))
    azs = len([k for k in resources(env_json, "aws_subnet") if "private-" in k])
    assert kinds == {"aws_eks_cluster": 1, "kubernetes_service_account_v1": 1, "helm_release": 1,
                     "aws_internet_gateway": 1, "aws_nat_gateway": nats, "aws_route": 1 + azs,
                     "aws_route_table_association": 2 * azs, "aws_eks_node_group": 1, "aws_eks_access_entry": 1,
                     "aws_iam_role_policy_attachment": 4 + 5 + 1, "aws_eks_addon": 4, "aws_ec2_tag": 1,
                     "kubernetes_storage_class_v1": 1}
    assert any("crd-release" in d for d in deps)


def test_nodepools_release_is_the_local_chart_after_karpenter(env_json):
    release = _release(env_json, "nodepools-release")
    assert release["chart"].startswith("assets/") and "repository" not in release
    karpenter_key = [k for k in resources(env_json, "helm_release") if "karpenter_release" in k][0]
    waiter_key = next(k for k in resources(env_json, "terraform_data") if "node-cleanup-wait" in k)
    assert release["depends_on"][:2] == [f"helm_release.{karpenter_key}", f"terraform_data.{waiter_key}"]


def test_destroy_waits_for_karpenter_instances_between_the_releases(env_json):
    """On destroy: NodePools release (its uninstall waited for the drains), then this wait until EC2
    reports Karpenter's instances terminated (up to 10 minutes), then Karpenter."""
    waiter = one(env_json, "terraform_data", "node-cleanup-wait")
    karpenter_key = [k for k in resources(env_json, "helm_release") if "karpenter_release" in k][0]
    assert waiter["depends_on"][0] == f"helm_release.{karpenter_key}"
    (provisioner,) = waiter["provisioner"]
    step = provisioner["local-exec"]
    assert step["when"] == "destroy"
    assert step["environment"] == {"CLUSTER": "${self.input.cluster}", "REGION": "${self.input.region}",
                                   "ATTEMPTS": "${self.input.attempts}"}
    assert waiter["input"] == {"cluster": one(env_json, "aws_eks_cluster")["name"], "region": "us-west-2",
                               "attempts": "60"}
    assert "aws ec2 describe-instances" in step["command"]
    assert "Name=tag:kubernetes.io/cluster/$CLUSTER,Values=owned" in step["command"]
    assert "Name=tag-key,Values=karpenter.sh/nodepool" in step["command"]


def test_token_mode_has_no_cli_dependent_wait(synth):
    provisioned = [k for k, v in synth["t-cloud"]["resource"].get("terraform_data", {}).items() if "provisioner" in v]
    assert provisioned == []


def test_nodepools_chart_is_copied_into_the_stack_output(synth):
    release = _release(synth["dev"], "nodepools-release")
    chart_dir = synth.outdir / "stacks" / "dev" / release["chart"]
    assert (chart_dir / "Chart.yaml").is_file() and (chart_dir / "templates" / "manifests.yaml").is_file()


# ----------------------------------------------------------------------------- NodePools / EC2NodeClass


def _manifests(doc) -> dict[str, dict]:
    values = _values(_release(doc, "nodepools-release"))
    return {f"{m['kind']}/{m['metadata']['name']}": m for m in values["manifests"]}


def test_manifest_inventory(env_json):
    assert sorted(_manifests(env_json)) == ["EC2NodeClass/default", "NodePool/gpu", "NodePool/stateful", "NodePool/stateless"]


def test_ec2_node_class(env_json):
    spec = _manifests(env_json)["EC2NodeClass/default"]["spec"]
    name = one(env_json, "aws_eks_cluster")["name"]
    rtype, key = ref_id(spec["role"].replace(".name}", ".x}"))
    assert rtype == "aws_iam_role" and "karpenter-node-role" in key and spec["role"].endswith(".name}")
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": name}}]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (bdm,) = spec["blockDeviceMappings"]
    assert bdm["ebs"]["encrypted"] is True and bdm["ebs"]["volumeType"] == "gp3"


def test_organisation_tags_never_reach_karpenters_nodes(synth):
    """spec.tags is in Karpenter's EC2NodeClass drift hash: a tag there that the organisation edits would
    replace every node. The nodes carry the identity tags and karpenter.node_tags only (issue 15); dev's
    own ``Owner`` tag goes to every Terraform-managed resource through default_tags, not to the nodes."""
    doc = synth["dev"]
    (provider,) = doc["provider"]["aws"]
    organisation = provider["default_tags"][0]["tags"]
    assert organisation.get("Owner") == "platform-team"
    tags = _manifests(doc)["EC2NodeClass/default"]["spec"]["tags"]
    name = one(doc, "aws_eks_cluster")["name"]
    assert tags == {"karpenter.sh/discovery": name, "Environment": "dev", "ManagedBy": "cdktf", "Cluster": name}


def test_pods_that_select_no_pool_land_on_demand(env_json):
    """Explicit weights: the highest is the on-demand stateful pool, so a pod without a selector (a
    database by accident) never lands on spot; gpu is tainted and lowest."""
    pools = {k.split("/")[1]: m["spec"] for k, m in _manifests(env_json).items() if k.startswith("NodePool/")}
    weights = {name: spec["weight"] for name, spec in pools.items()}
    assert weights == {"stateful": 100, "stateless": 50, "gpu": 10}
    top = max(weights, key=weights.get)
    assert _requirements({"spec": pools[top]})["karpenter.sh/capacity-type"] == ("In", ["on-demand"])
    assert not pools[top]["template"]["spec"].get("taints")


def _requirements(pool) -> dict[str, tuple[str, list[str]]]:
    return {r["key"]: (r["operator"], r["values"]) for r in pool["spec"]["template"]["spec"]["requirements"]}


def test_stateful_pool_is_on_demand_and_never_churned_by_consolidation(env_json):
    pool = _manifests(env_json)["NodePool/stateful"]
    assert _requirements(pool)["karpenter.sh/capacity-type"] == ("In", ["on-demand"])
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert pool["spec"]["disruption"]["budgets"] == [{"nodes": "1"}]
    assert pool["spec"]["template"]["spec"]["expireAfter"] == "Never"


def test_stateless_pool_prefers_spot_and_consolidates(env_json):
    pool = _manifests(env_json)["NodePool/stateless"]
    assert _requirements(pool)["karpenter.sh/capacity-type"] == ("In", ["spot", "on-demand"])
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"


def test_gpu_pool_uses_gpu_families_and_is_tainted(env_json):
    pool = _manifests(env_json)["NodePool/gpu"]
    assert _requirements(pool)["karpenter.k8s.aws/instance-family"] == ("In", ["g5", "g6"])
    assert pool["spec"]["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "true"}]
    assert pool["spec"]["template"]["metadata"]["labels"]["workload-type"] == "gpu"


def test_pools_carry_no_label_in_a_reserved_domain(env_json):
    """The NodePool CRD refuses karpenter.sh/* template labels (Karpenter sets karpenter.sh/nodepool itself)."""
    for key, pool in _manifests(env_json).items():
        if key.startswith("NodePool/"):
            labels = pool["spec"]["template"].get("metadata", {}).get("labels", {})
            assert not [k for k in labels if k.split("/")[0].endswith(("karpenter.sh", "kubernetes.io", "k8s.io"))], key


def test_every_pool_bounds_how_long_a_drain_may_block(env_json):
    grace = {key: pool["spec"]["template"]["spec"]["terminationGracePeriod"]
             for key, pool in _manifests(env_json).items() if key.startswith("NodePool/")}
    assert grace == {"NodePool/stateful": "4h", "NodePool/stateless": "1h", "NodePool/gpu": "1h"}


def test_nodepools_uninstall_may_wait_for_the_longest_drain(env_json):
    """Helm's uninstall waits until the NodePools are deleted, i.e. every node drained."""
    assert _release(env_json, "nodepools-release")["timeout"] == 4 * 3600 + 600
    assert _release(env_json, "karpenter_release")["timeout"] == 900


def test_every_pool_refers_to_the_node_class_and_has_limits(env_json):
    for key, pool in _manifests(env_json).items():
        if key.startswith("NodePool/"):
            spec = pool["spec"]
            assert spec["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                                "name": "default"}
            assert set(spec["limits"]) == {"cpu", "memory"}


@functools.lru_cache(maxsize=None)
def _crd_validator(filename: str) -> jsonschema.protocols.Validator:
    """A validator for the CRD's v1 schema; the schema itself is checked once, here."""
    crd = load_yaml((FIXTURES / filename).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = version["schema"]["openAPIV3Schema"]
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("stack", ["dev", "t-alt"])
def test_manifests_validate_against_the_1_14_1_crds(synth, stack):
    validators = {"EC2NodeClass": _crd_validator("crds/karpenter.k8s.aws_ec2nodeclasses.yaml"),
                  "NodePool": _crd_validator("crds/karpenter.sh_nodepools.yaml")}
    for key, manifest in _manifests(synth[stack]).items():
        concrete = json.loads(re.sub(r"\$\{[^}]+\}", "KarpenterNodeRole-placeholder", json.dumps(manifest)))
        validators[manifest["kind"]].validate(concrete)


def test_crd_validation_catches_a_bad_manifest():
    validator = _crd_validator("crds/karpenter.sh_nodepools.yaml")
    bad = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "x"},
           "spec": {"template": {"spec": {"requirements": [], "nodeClassRef": {"kind": "EC2NodeClass", "name": "d"}}},
                    "disruption": {"consolidationPolicy": "Sometimes"}}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)


def test_replicas_never_exceed_controller_nodes():
    base = {"name": "demo", "backend": {"type": "local"}, "cluster": {"node_desired_size": 1, "node_min_size": 1}}
    assert StackConfig.model_validate(base).karpenter_replicas == 1
    with pytest.raises(ValueError, match="karpenter.replicas 2 > cluster.node_min_size 1"):
        StackConfig.model_validate({**base, "karpenter": {"replicas": 2}})


def test_pod_identity_leaves_no_irsa_annotation_and_restarts_the_controller(synth):
    """Pod Identity (t-alt): the service account carries no role annotation (with both, the SDKs would take
    the IRSA web identity first); the chart values name no role either, and set a pod annotation naming the
    mode, so a switch rolls the controller, whose new pods get the new credentials. The release and the
    service account wait for the association and the agent (the annotation goes after the association
    exists), so the controller never starts without credentials."""
    doc = synth["t-alt"]
    (account,) = resources(doc, "kubernetes_service_account_v1").values()
    assert "annotations" not in account["metadata"]
    values = load_yaml(one(doc, "helm_release", "karpenter_release")["values"][0])
    assert values["serviceAccount"] == {"create": False, "name": "karpenter"}
    assert values["podAnnotations"] == {"platform/pod-credentials": "pod_identity"}
    association = next(k for k, a in resources(doc, "aws_eks_pod_identity_association").items()
                       if a["service_account"] == "karpenter")
    agent = next(k for k, a in resources(doc, "aws_eks_addon").items() if a["addon_name"] == "eks-pod-identity-agent")
    for body in (account, one(doc, "helm_release", "karpenter_release")):
        assert {f"aws_eks_pod_identity_association.{association}", f"aws_eks_addon.{agent}"} <= set(body["depends_on"])
    dev = load_yaml(one(synth["dev"], "helm_release", "karpenter_release")["values"][0])
    assert "podAnnotations" not in dev  # IRSA: the values of an existing environment do not move
    (dev_account,) = resources(synth["dev"], "kubernetes_service_account_v1").values()
    assert list(dev_account["metadata"]["annotations"]) == ["eks.amazonaws.com/role-arn"]
