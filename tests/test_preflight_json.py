"""The fresh-account preflight in the synthesized JSON (fast tier; tests/test_preflight.py plans it
against the emulator): what is read, from literals only, and what each condition compares."""

from __future__ import annotations

import json
import re

import pytest

from model import preflight
from model.karpenter import KarpenterConfig
from tests.conftest import one, resources

DATA_TYPES = ("aws_availability_zones", "aws_iam_roles", "aws_eips", "aws_servicequotas_service_quota",
              "aws_ec2_instance_type")


def preflight_data(doc: dict) -> dict[str, dict]:
    """``{"<type>.<id>": body}`` of the preflight layer's data sources."""
    return {f"{rtype}.{name}": body for rtype, items in doc.get("data", {}).items() for name, body in items.items()
            if body["//"]["metadata"]["path"].split("/")[1] == "preflight"}


def datum(doc: dict, dtype: str, contains: str = "") -> dict:
    """The data source of ``dtype`` whose id contains ``contains`` (``one`` for data sources)."""
    return one({"resource": doc["data"]}, dtype, contains)


def conditions(body: dict) -> list[dict]:
    return body.get("lifecycle", {}).get("postcondition", [])


def test_every_read_takes_literals_only_so_plan_decides_every_check(env_json):
    """Fact 19: a data source referencing a managed resource with changes pending is read during
    apply, after the network is built; the preflight must be decided by the plan."""
    found = preflight_data(env_json)
    assert {key.split(".")[0] for key in found} == set(DATA_TYPES)
    for key, body in found.items():
        arguments = {k: v for k, v in body.items() if k not in ("//", "lifecycle")}
        assert "${" not in json.dumps(arguments), f"{key} reads from an expression: {arguments}"
        for condition in conditions(body):
            managed = re.findall(r"(?<![\w.])(aws_\w+)\.", condition["condition"])
            assert not managed, f"{key}'s condition refers to managed resources {managed}"


def test_each_zone_is_refused_when_missing_or_without_eks_control_planes(synth):
    doc = synth["t-alt"]  # explicit zones
    zones = datum(doc, "aws_availability_zones")
    checks = [c["condition"] for c in conditions(zones)]
    for az in ("us-west-2a", "us-west-2b"):
        assert f'${{contains(self.names, "{az}")}}' in checks
        assert (f'${{!contains(["use1-az3", "usw1-az2", "cac1-az3"], lookup(zipmap(self.names, self.zone_ids), '
                f'"{az}", ""))}}') in checks
    assert len(checks) == 4
    assert preflight.NO_CONTROL_PLANE_ZONE_IDS == ("use1-az3", "usw1-az2", "cac1-az3")  # EKS user guide


def test_spot_pools_need_the_spot_role_refused_for_a_new_cluster_warned_for_a_running_one(env_json):
    roles = datum(env_json, "aws_iam_roles")
    assert roles["path_prefix"] == "/aws-service-role/spot.amazonaws.com/"
    (refusal,) = conditions(roles)
    clusters = next(iter(resources({"resource": env_json["data"]}, "aws_eks_clusters")))
    assert refusal["condition"] == (f'${{length(self.names) > 0 || contains(data.aws_eks_clusters.{clusters}.names, '
                                    f'"{one(env_json, "aws_eks_cluster")["name"]}")}}')
    assert "karpenter.nodepools stateless fail" in refusal["error_message"]
    warning = env_json["check"]["spot_service_linked_role"]["assert"][0]
    assert warning["condition"] == f"${{length(data.aws_iam_roles.{next(iter(env_json['data']['aws_iam_roles']))}.names) > 0}}"


def test_the_elastic_ip_check_knows_the_stacks_own_nat_addresses_by_name(env_json):
    own = datum(env_json, "aws_eips", "own-eips")
    names = sorted(e["tags"]["Name"] for e in resources(env_json, "aws_eip").values())
    (tag_filter,) = own["filter"]
    assert tag_filter["name"] == "tag:Name" and sorted(tag_filter["values"]) == names
    quota = datum(env_json, "aws_servicequotas_service_quota", "L-0263D0A3")
    assert (quota["service_code"], quota["quota_code"]) == ("ec2", "L-0263D0A3")
    (refusal,) = conditions(quota)
    assert refusal["condition"].endswith(f" + {len(names)} <= self.value}}")
    assert "- length(data.aws_eips." in refusal["condition"]  # own addresses are not counted twice


def test_the_controller_nodes_must_fit_their_on_demand_quota(env_json):
    group = one(env_json, "aws_eks_node_group")
    instance = datum(env_json, "aws_ec2_instance_type")
    assert [instance["instance_type"]] == group["instance_types"]
    (refusal,) = conditions(instance)
    desired = group["scaling_config"]["desired_size"]
    zones = len(group["subnet_ids"]) if isinstance(group["subnet_ids"], list) else 3
    # the update surge: EKS adds max(2 x zones, max_unavailable) nodes while it updates the group
    surge = max(2 * zones, group["update_config"]["max_unavailable"])
    assert refusal["condition"].startswith(
        f"${{{desired + surge} * self.default_vcpus <= data.aws_servicequotas_service_quota.")
    assert "L-1216C47A" in refusal["condition"]  # m6i: Standard class
    replacement = env_json["check"]["controller_nodes_replacement"]["assert"][0]
    assert replacement["condition"].startswith(f"${{{2 * desired + surge} * data.aws_ec2_instance_type.")


def test_pool_warnings_are_check_blocks_by_pool_capacity_type_and_quota(env_json):
    assert sorted(env_json["check"]) == [
        "controller_nodes_replacement", "controller_nodes_update", "kept_logs_key", "nodepool_gpu_on-demand_L-DB2E81BA", "nodepool_stateful_on-demand_L-1216C47A",
        "nodepool_stateless_on-demand_L-1216C47A", "nodepool_stateless_spot_L-34B43A08", "spot_service_linked_role"]
    gpu = env_json["check"]["nodepool_gpu_on-demand_L-DB2E81BA"]["assert"][0]
    assert gpu["condition"].endswith(".value >= 4}")
    assert gpu["error_message"].startswith("karpenter.nodepools.gpu: ")


def test_without_quota_and_spot_role_reads_only_the_zone_check_remains(synth):
    """``preflight.quotas: false`` drops the Service Quotas reads, ``preflight.spot_role: false`` the one
    read that needs iam:ListRoles (a spot pool is still configured: stateless)."""
    doc = synth["t-alt"]  # preflight.quotas: false, preflight.spot_role: false
    assert "spot" in doc_pool_capacity_types(doc)
    assert {key.split(".")[0] for key in preflight_data(doc)} == {"aws_availability_zones"}
    assert list(doc["check"]) == ["kept_logs_key"]  # the cluster layer's, not the preflight's


def doc_pool_capacity_types(doc: dict) -> str:
    return json.dumps([r.get("values") for r in resources(doc, "helm_release").values()])


def test_the_bootstrap_stack_creates_or_adopts_the_spot_role_and_never_destroys_it(synth):
    doc = synth["state-bootstrap"]
    role_id, role = next(iter(resources(doc, "aws_iam_service_linked_role").items()))
    assert role["aws_service_name"] == "spot.amazonaws.com"
    assert role["lifecycle"] == {"prevent_destroy": True, "ignore_changes": ["description"]}
    (lookup_id,) = doc["data"]["aws_iam_roles"]
    assert doc["data"]["aws_iam_roles"][lookup_id]["path_prefix"] == "/aws-service-role/spot.amazonaws.com/"
    assert doc["import"] == [{"for_each": f"${{toset(data.aws_iam_roles.{lookup_id}.arns)}}",
                              "to": f"aws_iam_service_linked_role.{role_id}", "id": "${each.value}",
                              "provider": role["provider"]}]


def test_no_environment_manages_an_account_wide_role(env_json):
    assert "aws_iam_service_linked_role" not in env_json.get("resource", {})


# ----------------------------------------------------------------------------- the knowledge


def pools_needs(config: KarpenterConfig) -> dict[tuple[str, str, str], tuple[int, str]]:
    return {(n.pool, n.capacity_type, n.code): (n.vcpus, n.what) for name, pool in config.nodepools.items()
            for n in preflight.pool_needs(name, pool.capacity_types, pool.instance_categories,
                                          pool.instance_families, pool.architectures)}


def test_default_pools_need_standard_and_g_quotas():
    assert pools_needs(KarpenterConfig()) == {
        ("stateful", "on-demand", "L-1216C47A"): (2, "m/r"),
        ("stateless", "spot", "L-34B43A08"): (2, "c/m"),
        ("stateless", "on-demand", "L-1216C47A"): (2, "c/m"),
        ("gpu", "on-demand", "L-DB2E81BA"): (4, "g5/g6"),
    }


@pytest.mark.parametrize("pool, expected", [
    ({"instance_categories": ["m"], "architectures": ["arm64"]}, {("p", "on-demand", "L-1216C47A"): (1, "m")}),
    ({"instance_families": ["p4d", "p5"], "capacity_types": ["spot"]}, {("p", "spot", "L-7212CCBC"): (96, "p4d")}),
    ({"instance_families": ["p5"], "capacity_types": ["spot"]}, {}),  # P5 spot has its own quota, not read
    ({"instance_families": ["p5", "g6"]}, {("p", "on-demand", "L-417A185B"): (16, "p5"),
                                           ("p", "on-demand", "L-DB2E81BA"): (4, "g6")}),
    ({"instance_categories": ["inf", "trn"]}, {}),  # classes whose codes are not checked
])
def test_pool_needs(pool, expected):
    config = KarpenterConfig(nodepools={"p": {"min_generation": None, **pool}})
    assert pools_needs(config) == expected


@pytest.mark.parametrize("env, quota, rolls, replaces, stateful_left", [
    # DESIGN fact 26 in figures: vCPUs of the controller nodes (desired + update surge + replacement group)
    ("dev", 5, False, False, 5 - 16),     # 1 x t3.large, 3 zones: 2 + 12 to roll, + 2 to replace
    ("dev", 32, True, True, 32 - 16),
    ("prod", 5, False, False, 5 - 20),    # 2 x m6i.large, 3 zones: 4 + 12 to roll, + 4 to replace
    ("prod", 16, True, False, 16 - 20),
    ("prod", 32, True, True, 32 - 20),
])
def test_controller_reservation_figures_of_the_shipped_environments(env, quota, rolls, replaces, stateful_left):
    from stacks.config import ENVIRONMENTS_DIR, load_config
    from model.cluster import CONTROLLER_MAX_UNAVAILABLE

    config = load_config(ENVIRONMENTS_DIR / f"{env}.yaml")
    vcpus = {"t3.large": 2, "m6i.large": 2}[config.cluster.node_instance_type]
    zones = len(config.network.availability_zones) or config.network.az_count
    reserve = preflight.controller_reservation(config.cluster.node_desired_size, zones, CONTROLLER_MAX_UNAVAILABLE)
    assert (reserve.to_roll * vcpus <= quota, reserve.total * vcpus <= quota) == (rolls, replaces)
    assert quota - reserve.total * vcpus == stateful_left
    assert (quota - reserve.total * vcpus >= 2) == (quota >= 32)  # the stateful pool's smallest m/r: 2 vCPUs
