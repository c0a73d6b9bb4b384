"""Network layer: VPC, subnets per AZ, IGW, NAT per AZ (or one), routes, tags, flow logs."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import tempfile

import pytest

from tests.conftest import policy_statements, one, resources
from tests.tf import TERRAFORM

AZS = ("us-west-2a", "us-west-2b", "us-west-2c")


def test_vpc_has_configured_cidr_and_dns(env_json):
    vpc = one(env_json, "aws_vpc")
    assert vpc["cidr_block"] == "10.0.0.0/16"
    assert vpc["enable_dns_support"] is True and vpc["enable_dns_hostnames"] is True


def test_three_public_and_three_private_subnets_keyed_by_az(env_json):
    subnets = resources(env_json, "aws_subnet")
    assert len(subnets) == 6
    for az in AZS:
        assert one(env_json, "aws_subnet", f"public-{az}_")["availability_zone"] == az
        assert one(env_json, "aws_subnet", f"private-{az}_")["availability_zone"] == az


def _zone_cidrs(doc: dict, scenarios: dict[str, tuple[dict, list[str]]]) -> dict[str, dict]:
    """What Terraform makes of the stack's zone CIDR local, per scenario ``(latched subnets, zones in use)``:
    the local's own expression, with the latch's recorded subnets and the zone list of the scenario,
    evaluated by ``terraform console`` (no provider needed)."""
    ((_, expr),) = [(k, v) for k, v in doc["locals"].items() if "zone-cidrs" in k]
    latch = re.search(r"terraform_data\.[A-Za-z0-9_-]+\.input", expr).group(0)
    zones = re.search(r"for az in (\[[^\]]*\])", expr).group(1)
    local = {}
    for key, (latched, current) in scenarios.items():
        local[f"latched_{key}"] = {"subnets": latched}
        local[f"x_{key}"] = expr.replace(latch, f"local.latched_{key}").replace(zones, json.dumps(current), 1)
    with tempfile.TemporaryDirectory() as tmp:
        (open(f"{tmp}/main.tf.json", "w")).write(json.dumps({"locals": local}))
        query = "jsonencode({" + ", ".join(f'"{k}" = local.x_{k}' for k in scenarios) + "})\n"
        out = subprocess.run([TERRAFORM, "console"], input=query, cwd=tmp, capture_output=True, text=True,
                             env={**os.environ, "CHECKPOINT_DISABLE": "1"}, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(json.loads(out.stdout))


def _first_apply(doc: dict) -> dict:
    return one(doc, "terraform_data", "network_identity")["input"]["subnets"]


def test_subnets_do_not_overlap_and_fit_in_the_vpc(env_json):
    vpc = ipaddress.ip_network(one(env_json, "aws_vpc")["cidr_block"])
    zones = sorted(_first_apply(env_json))
    cidrs = _zone_cidrs(env_json, {"first": (_first_apply(env_json), zones)})["first"]
    assert cidrs == _first_apply(env_json)  # a first apply builds what the latch records
    nets = [ipaddress.ip_network(c) for zone in cidrs.values() for c in zone.values()]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert {ipaddress.ip_network(z["private"]).prefixlen for z in cidrs.values()} == {19}  # room for VPC CNI pod IPs
    for key, subnet in resources(env_json, "aws_subnet").items():
        kind, az = re.match(r"network_(private|public)-(.+)_[0-9A-F]+$", key).groups()
        assert re.fullmatch(rf'\$\{{local\.network_zone-cidrs_[0-9A-F]+\["{az}"\]\.{kind}\}}', subnet["cidr_block"])


def test_zones_keep_their_cidrs_when_zones_are_added_reordered_or_removed(synth):
    """Issue 21, item 3: a zone of the first apply keeps its blocks whatever the list becomes; an added
    zone takes free blocks of the VPC, the same ones whichever other zones are added with or after it."""
    doc = synth["prod"]
    first = _first_apply(doc)
    ((_, expr),) = [(k, v) for k, v in doc["locals"].items() if "zone-cidrs" in k]
    latch = next(k for k in resources(doc, "terraform_data") if "network_identity" in k)
    assert f"try(terraform_data.{latch}.input.subnets[az], " in expr  # a recorded zone's CIDRs come from the latch
    a, b, c = sorted(first)
    d, e, f, g = (a[:-1] + x for x in "defg")
    out = _zone_cidrs(doc, {
        "reordered": (first, [c, a, b]), "added_d": (first, [a, b, c, d]), "added_e": (first, [a, b, c, e]),
        "added_d_e": (first, [a, b, c, d, e]), "removed_c": (first, [a, b]),
        "full": (first, [a, b, c, d, e, f, g]),
    })
    assert out["reordered"] == first
    assert out["removed_c"] == {a: first[a], b: first[b]}
    for key in ("added_d", "added_e", "added_d_e"):
        assert {z: out[key][z] for z in first} == first, key
    assert out["added_d_e"][d] == out["added_d"][d] and out["added_d_e"][e] == out["added_e"][e]
    vpc = ipaddress.ip_network(one(doc, "aws_vpc")["cidr_block"])
    nets = [ipaddress.ip_network(cidr) for zone in out["added_d_e"].values() for cidr in zone.values()]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(x.overlaps(y) for i, x in enumerate(nets) for y in nets[i + 1:])
    assert out["full"][g] is None  # no free pair left for a 4th added zone in the /16's free quarter
    guard = one(doc, "aws_vpc")["lifecycle"]["precondition"][-1]
    assert "c != null" in guard["condition"] and "no free block is left in network.vpc_cidr" in guard["error_message"]


def test_a_zone_under_karpenter_nodes_or_volumes_cannot_be_removed(synth):
    """The plan reads the cluster's Karpenter nodes and claim volumes outside the zones in use (every other
    letter of the region) and refuses while any is there, naming them and what to do first."""
    doc = synth["prod"]
    (read,) = doc["data"]["aws_instances"].values()
    filters = {f["name"]: f["values"] for f in read["filter"]}
    zones = set(_first_apply(doc))
    assert not zones & set(filters["availability-zone"]) and len(filters["availability-zone"]) == 26 - len(zones)
    assert filters["tag:karpenter.sh/discovery"] == ["platform-prod"]
    (check,) = read["lifecycle"]["postcondition"]
    assert check["condition"] == "${length(self.ids) == 0}"
    assert "kubectl drain" in check["error_message"] and "${join(\", \", self.ids)}" in check["error_message"]
    (volumes,) = doc["data"]["aws_ebs_volumes"].values()  # a claim's volume cannot leave its zone
    assert {f["name"]: f["values"] for f in volumes["filter"]} == {
        "availability-zone": filters["availability-zone"], "tag:Cluster": ["platform-prod"]}
    (check,) = volumes["lifecycle"]["postcondition"]
    assert check["condition"] == "${length(self.ids) == 0}" and "snapshot each volume" in check["error_message"]


def test_no_subnet_maps_public_ips(env_json):
    assert all(s["map_public_ip_on_launch"] is False for s in resources(env_json, "aws_subnet").values())


def test_subnet_tags(env_json):
    name = one(env_json, "aws_vpc")["tags"]["Name"]
    for key, subnet in resources(env_json, "aws_subnet").items():
        tags = subnet["tags"]
        assert tags[f"kubernetes.io/cluster/{name}"] == "shared"
        if "public-" in key:
            assert tags["kubernetes.io/role/elb"] == "1"
            assert "karpenter.sh/discovery" not in tags
        else:
            assert tags["kubernetes.io/role/internal-elb"] == "1"
            assert tags["karpenter.sh/discovery"] == name


def _private_route_targets(doc):
    routes = resources(doc, "aws_route")
    return {k: r for k, r in routes.items() if "private-" in k}


def test_one_nat_per_az_in_ha_mode(synth):
    doc = synth["prod"]
    assert len(resources(doc, "aws_nat_gateway")) == 3 and len(resources(doc, "aws_eip")) == 3
    routes = _private_route_targets(doc)
    assert len(routes) == 3
    for az in AZS:
        route = one(doc, "aws_route", f"private-{az}-default-route")
        nat_id = [k for k in resources(doc, "aws_nat_gateway") if f"nat-{az}_" in k][0]
        assert route["nat_gateway_id"] == f"${{aws_nat_gateway.{nat_id}.id}}"
        assert route["destination_cidr_block"] == "0.0.0.0/0"


def test_single_nat_gateway_serves_every_private_route(synth):
    doc = synth["dev"]
    nats = resources(doc, "aws_nat_gateway")
    assert len(nats) == 1 and len(resources(doc, "aws_eip")) == 1
    (nat_id,) = nats
    assert {r["nat_gateway_id"] for r in _private_route_targets(doc).values()} == {f"${{aws_nat_gateway.{nat_id}.id}}"}


def test_nat_gateways_sit_in_public_subnets(synth):
    doc = synth["t-alt"]  # two AZs, NAT per AZ
    for key, nat in resources(doc, "aws_nat_gateway").items():
        az = key.split("nat-")[1].rsplit("_", 1)[0]
        public_id = [k for k in resources(doc, "aws_subnet") if f"public-{az}_" in k][0]
        assert nat["subnet_id"] == f"${{aws_subnet.{public_id}.id}}"


def test_public_route_goes_to_internet_gateway_and_every_subnet_is_associated(env_json):
    (igw_id,) = resources(env_json, "aws_internet_gateway")
    assert one(env_json, "aws_route", "public-default-route")["gateway_id"] == f"${{aws_internet_gateway.{igw_id}.id}}"
    assoc = resources(env_json, "aws_route_table_association")
    subnet_refs = {f"${{aws_subnet.{k}.id}}" for k in resources(env_json, "aws_subnet")}
    assert {a["subnet_id"] for a in assoc.values()} == subnet_refs


def test_two_az_variant_makes_two_of_each(synth):
    doc = synth["t-alt"]
    assert len(resources(doc, "aws_subnet")) == 4 and len(resources(doc, "aws_nat_gateway")) == 2
    assert {s["availability_zone"] for s in resources(doc, "aws_subnet").values()} == {"us-west-2a", "us-west-2b"}


def test_flow_logs_capture_all_traffic_to_an_encrypted_log_group(env_json):
    flow = one(env_json, "aws_flow_log")
    assert flow["traffic_type"] == "ALL" and flow["log_destination_type"] == "cloud-watch-logs"
    group = one(env_json, "aws_cloudwatch_log_group", "flow-logs")
    assert group["kms_key_id"].startswith("${aws_kms_key.") and group["retention_in_days"] >= 365


def test_flow_log_role_has_what_aws_documents_for_cloudwatch_delivery_except_creating_groups(env_json):
    """AWS documents CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups and
    DescribeLogStreams; CreateLogGroup is withheld: Terraform owns the group (retention, KMS)."""
    policy = one(env_json, "aws_iam_role_policy", "flow-logs-policy")
    statements = {s["sid"]: s for s in policy_statements(env_json, policy["policy"])}
    group_key = next(k for k in resources(env_json, "aws_cloudwatch_log_group") if "flow-logs" in k)
    assert statements["DeliverFlowLogs"]["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    assert statements["DeliverFlowLogs"]["resources"] == [f"${{aws_cloudwatch_log_group.{group_key}.arn}}:*"]
    assert statements["FindLogGroup"]["actions"] == ["logs:DescribeLogGroups"]
    assert statements["FindLogGroup"]["resources"] == ["*"]
    granted = {a for s in statements.values() for a in s["actions"]}
    assert "logs:CreateLogGroup" not in granted


def test_default_security_group_has_no_rules(env_json):
    sg = one(env_json, "aws_default_security_group")
    assert "ingress" not in sg and "egress" not in sg


@pytest.mark.parametrize("rtype", ["aws_vpc", "aws_subnet", "aws_nat_gateway", "aws_route_table"])
def test_logical_ids_never_use_list_indexes(env_json, rtype):
    for key in resources(env_json, rtype):
        construct_path = key.rsplit("_", 1)[0]  # drop the hash cdktf appends
        assert not any(part.isdigit() for part in construct_path.replace("_", "-").split("-")), key


# ----------------------------------------------------------------------------- an existing network (issue 21, item 1)

SHARED = "t-shared-vpc"  # stacks/environments/examples/shared-vpc.yaml
OWNED_NETWORK = ("aws_vpc", "aws_subnet", "aws_route", "aws_route_table", "aws_route_table_association",
                 "aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_flow_log", "aws_default_security_group")


def _example():
    from stacks.config import ENVIRONMENTS_DIR, load_config

    return load_config(ENVIRONMENTS_DIR / "examples" / "shared-vpc.yaml").network.existing


def test_an_existing_network_gets_no_network_resource_and_no_tag_of_ours(synth):
    doc = synth[SHARED]
    assert not [t for t in OWNED_NETWORK if resources(doc, t)]
    assert not [k for k in resources(doc, "aws_cloudwatch_log_group") if "flow-logs" in k]
    existing = _example()
    ours = set(existing.private_subnet_ids) | set(existing.public_subnet_ids) | {existing.vpc_id}
    tagged = [t for t in resources(doc, "aws_ec2_tag").values() if t["resource_id"] in ours]
    assert not tagged  # only the cluster security group (EKS's, in this account) is tagged


def test_an_existing_network_is_what_the_cluster_nodes_and_outputs_use(synth):
    doc = synth[SHARED]
    existing = _example()
    cluster = one(doc, "aws_eks_cluster")
    assert cluster["vpc_config"]["subnet_ids"] == list(existing.private_subnet_ids)
    assert one(doc, "aws_eks_node_group")["subnet_ids"] == list(existing.private_subnet_ids)
    assert doc["output"]["vpc_id"]["value"] == existing.vpc_id
    assert doc["output"]["private_subnet_ids"]["value"] == list(existing.private_subnet_ids)
    assert doc["output"]["public_subnet_ids"]["value"] == list(existing.public_subnet_ids)


def test_karpenter_selects_existing_subnets_by_id(synth):
    """In a shared VPC the stack cannot tag the owner's subnets (DESIGN fact 28): by id, not by discovery tag."""
    from tests.conftest import load_yaml

    def node_class(doc):
        release = next(r for r in resources(doc, "helm_release").values() if r["name"] == "karpenter-nodepools")
        return next(m for m in load_yaml(release["values"][0])["manifests"] if m["kind"] == "EC2NodeClass")["spec"]

    spec = node_class(synth[SHARED])
    assert spec["subnetSelectorTerms"] == [{"id": s} for s in _example().private_subnet_ids]
    assert spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "platform-shared"}}]
    assert node_class(synth["dev"])["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "platform-dev"}}]


def _reads(doc, rtype):
    return doc.get("data", {}).get(rtype, {})


def test_every_existing_subnet_is_read_at_plan_and_refused_outside_the_vpc(synth):
    doc = synth[SHARED]
    existing = _example()
    subnets = _reads(doc, "aws_subnet")
    assert sorted(s["id"] for s in subnets.values()) == sorted([*existing.private_subnet_ids, *existing.public_subnet_ids])
    for read in subnets.values():
        (check,) = read["lifecycle"]["postcondition"]
        assert check["condition"] == f'${{self.vpc_id == "{existing.vpc_id}"}}'
        assert read["id"] in check["error_message"] and existing.vpc_id in check["error_message"]
    assert all("${" not in json.dumps({k: v for k, v in r.items() if k != "lifecycle"}) for r in subnets.values())


def test_the_existing_vpc_needs_dns_support_and_hostnames(synth):
    (vpc,) = _reads(synth[SHARED], "aws_vpc").values()
    assert vpc["id"] == _example().vpc_id
    (check,) = vpc["lifecycle"]["postcondition"]
    assert check["condition"] == "${self.enable_dns_support && self.enable_dns_hostnames}"
    assert "nodes cannot register with the cluster" in check["error_message"]


def test_each_private_subnet_needs_a_default_route_named_by_its_route_table(synth):
    doc = synth[SHARED]
    tables = {k: v for k, v in _reads(doc, "aws_route_table").items() if "main-route-table" not in k}
    assert len(tables) == len(_example().private_subnet_ids)
    for sid in _example().private_subnet_ids:
        (read,) = [v for k, v in tables.items() if sid in k]
        assert "coalesce(one(data.aws_route_tables." in read["route_table_id"]  # explicit association, else the main
        (check,) = read["lifecycle"]["postcondition"]
        assert '"0.0.0.0/0"' in check["condition"] and "${self.route_table_id}" in check["error_message"]
        assert sid in check["error_message"]


def test_existing_subnets_zones_are_checked_by_the_preflight(synth):
    doc = synth[SHARED]
    (zones,) = _reads(doc, "aws_availability_zones").values()
    checks = zones["lifecycle"]["postcondition"]
    for sid in _example().private_subnet_ids:
        (check,) = [c for c in checks if f"private_subnet_ids: {sid} is in" in c["error_message"]]
        assert "use1-az3" in check["condition"] and "where EKS cannot place a control plane" in check["error_message"]
    (two,) = [c for c in checks if "at least two zones" in c["error_message"]]
    assert two["condition"].startswith("${length(distinct([")
    free = doc["check"]["existing_subnet_addresses"]["assert"][0]
    assert "available_ip_address_count" in free["condition"] and ">= 1320" in free["condition"]  # 264 vCPUs × 5
    assert "cpu_limit 264" in free["error_message"]
    assert not _reads(doc, "aws_eips")  # no NAT gateway of ours: no Elastic IP quota read


@pytest.mark.parametrize("stack,mode", [("prod", "owned"), (SHARED, "existing")])
def test_the_network_mode_is_latched(synth, stack, mode):
    """A switch between an owned and an existing network is refused at plan, in both directions."""
    doc = synth[stack]
    holder = one(doc, "aws_vpc") if mode == "owned" else one(doc, "terraform_data", "existing-network")
    conditions = [p["condition"] for p in holder["lifecycle"]["precondition"]]
    latch = next(k for k in resources(doc, "terraform_data") if "network_identity" in k)
    assert f'${{lookup(terraform_data.{latch}.output, "network", "owned") == "{mode}"}}' in conditions
    if mode == "existing":
        assert one(doc, "terraform_data", "network_identity")["input"]["network"] == "existing"
        assert any("vpc_id" in c for c in conditions)
    else:  # an owned latch keeps exactly what it always recorded: no replacement, no new key
        assert "network" not in one(doc, "terraform_data", "network_identity")["input"]


def test_added_zones_take_the_lowest_free_blocks_until_the_vpc_is_full():
    """10.0.0.0/16 with /19 private and /24 public subnets, first applied with three zones (privates
    .0/.32/.64, publics .96-.98): four zones more fit (the free /19s .128-.224, /24s from .99), a fifth does not."""
    from model.network import NetworkConfig

    config = NetworkConfig()
    grown = config.growth_blocks(3, 10)
    assert grown == [{"private": f"10.0.{p}.0/19", "public": f"10.0.{q}.0/24"}
                     for p, q in ((128, 99), (160, 100), (192, 101), (224, 102))]
    first = [ipaddress.ip_network(c) for zone in config.subnet_plan("us-west-2").values() for c in zone.values()]
    nets = first + [ipaddress.ip_network(c) for pair in grown for c in pair.values()]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert config.growth_blocks(3, 2) == grown[:2]  # the same pairs whatever is asked for
