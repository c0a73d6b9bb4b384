"""Network layer: VPC, subnets per AZ, IGW, NAT per AZ (or one), routes, tags, flow logs."""

from __future__ import annotations

import ipaddress

import pytest

from tests.conftest import policy_statements, one, resources

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


def test_subnets_do_not_overlap_and_fit_in_the_vpc(env_json):
    vpc = ipaddress.ip_network(one(env_json, "aws_vpc")["cidr_block"])
    nets = [ipaddress.ip_network(s["cidr_block"]) for s in resources(env_json, "aws_subnet").values()]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    private = {n.prefixlen for k, n in zip(resources(env_json, "aws_subnet"), nets) if "private-" in k}
    assert private == {19}  # room for VPC CNI pod IPs


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
