"""Configuration: defaults, the shipped environments, and bad input rejected with one clear line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.config import (
    SCHEMA_FILE,
    ConfigError,
    StackConfig,
    json_schema,
    load_config,
    support_warning,
)
from tests.conftest import ROOT

MINIMAL = {"name": "demo", "backend": {"type": "s3", "bucket": "state-bucket"}}


def _write(tmp_path: Path, data: dict | str, name: str = "env.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _merge(base: dict, patch: dict) -> dict:
    """Deep-merge ``patch`` into ``base``; a ``backend`` in the patch replaces the whole backend."""
    out = dict(base)
    for k, v in patch.items():
        deep = isinstance(v, dict) and isinstance(out.get(k), dict) and k != "backend"
        out[k] = _merge(out[k], v) if deep else v
    return out


def test_minimal_file_gets_safe_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.region == "us-west-2"
    assert cfg.network.vpc_cidr == "10.0.0.0/16" and cfg.network.az_count == 3
    assert cfg.network.single_nat_gateway is False
    assert cfg.cluster.version == "1.36" and cfg.karpenter.version == "1.14.1"
    assert cfg.karpenter.ami_alias == "al2023@v20260714" and cfg.cluster.support_type == "EXTENDED"
    assert cfg.backend.type == "s3" and cfg.backend.encrypt is True and cfg.backend.use_lockfile is True
    assert set(cfg.karpenter.nodepools) == {"stateful", "stateless", "gpu"}
    assert cfg.karpenter_replicas == 2 and cfg.kubernetes_auth_mode == "exec"


def _pools(tmp_path, nodepools) -> dict:
    return load_config(_write(tmp_path, _merge(MINIMAL, {"karpenter": {"nodepools": nodepools}}))).karpenter.nodepools


def test_adding_a_pool_keeps_the_default_pools(tmp_path):
    """Issue 23 item 1: a user who adds one pool must not drain the three default pools."""
    pools = _pools(tmp_path, {"batch": {"instance_categories": ["c"], "labels": {"workload-type": "batch"}}})
    assert list(pools) == ["stateful", "stateless", "gpu", "batch"]
    assert pools["stateful"] == load_config(_write(tmp_path, MINIMAL)).karpenter.nodepools["stateful"]


def test_a_default_pool_goes_only_by_null_or_enabled_false(tmp_path):
    assert list(_pools(tmp_path, {"gpu": None})) == ["stateful", "stateless"]
    assert list(_pools(tmp_path, {"gpu": {"enabled": False}})) == ["stateful", "stateless"]
    assert list(_pools(tmp_path, {})) == ["stateful", "stateless", "gpu"]


def test_a_listed_default_pool_changes_only_the_keys_given(tmp_path):
    pools = _pools(tmp_path, {"stateless": {"cpu_limit": 200, "instance_categories": ["c", "m", "r"]}})
    stateless = pools["stateless"]
    assert stateless.cpu_limit == 200 and stateless.instance_categories == ("c", "m", "r")  # a list replaces
    assert stateless.capacity_types == ("spot", "on-demand") and stateless.weight == 50  # the rest stays
    labels = _pools(tmp_path, {"stateless": {"labels": {"team": "web"}}})["stateless"].labels
    assert labels == {"workload-type": "stateless", "team": "web"}  # a label adds; workloads still find the pool
    assert _pools(tmp_path, {"stateless": {"labels": {"workload-type": None}}})["stateless"].labels == {}


def test_a_dumped_config_loads_back_to_the_same_pools(tmp_path):
    cfg = load_config(_write(tmp_path, _merge(MINIMAL, {"karpenter": {"nodepools": {"gpu": None}}})))
    assert StackConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_models_are_frozen(tmp_path):
    cfg = load_config(_write(tmp_path, MINIMAL))
    with pytest.raises(Exception):
        cfg.network.vpc_cidr = "10.1.0.0/16"  # type: ignore[misc]


def test_shipped_environments_differ_where_they_should():
    dev = load_config(ROOT / "stacks/environments/dev.yaml")
    prod = load_config(ROOT / "stacks/environments/prod.yaml")
    assert dev.network.single_nat_gateway and not prod.network.single_nat_gateway
    assert dev.cluster.node_desired_size == 1 and dev.karpenter_replicas == 1
    assert prod.cluster.node_min_size >= 2 and prod.karpenter_replicas == 2


def test_subnet_plan_matches_cidrsubnet_math(tmp_path):
    plan = load_config(_write(tmp_path, MINIMAL)).network.subnet_plan("us-west-2")
    # cidrsubnet("10.0.0.0/16", 3, 0..2) then the next free /24s
    assert [plan[az]["private"] for az in plan] == ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
    assert [plan[az]["public"] for az in plan] == ["10.0.96.0/24", "10.0.97.0/24", "10.0.98.0/24"]


def test_cloud_backend_defaults_to_token_auth_and_can_opt_back_into_exec(tmp_path):
    cloud = {"backend": {"type": "cloud", "organization": "o", "workspace": "w"}}
    assert load_config(_write(tmp_path, _merge(MINIMAL, cloud))).kubernetes_auth_mode == "token"
    # the stack chooses its provider blocks by kubernetes_auth_mode alone (tests/test_karpenter.py
    # covers both modes' blocks), so an explicit mode wins over the backend's default
    explicit = _merge(MINIMAL, {**cloud, "kubernetes_auth": {"mode": "exec"}})
    assert load_config(_write(tmp_path, explicit)).kubernetes_auth_mode == "exec"


VPC, SUB1, SUB2 = "vpc-0123456789abcdef0", "subnet-0123456789abcdef0", "subnet-0123456789abcdef1"
BAD_INPUTS = [
    # (patch, field named in the message, words of the fix)
    ({"nmae": "x"}, "nmae", "unknown key"),
    ({"network": {"vpc_cidr": "10.0.0.0/33"}}, "network.vpc_cidr", "CIDR"),
    ({"network": {"vpc_cidr": "10.0.0.1/16"}}, "network.vpc_cidr", "CIDR"),
    ({"network": {"vpc_cidr": "10.0.0.0/24", "private_subnet_newbits": 1}}, "network", "do not fit"),
    ({"network": {"az_count": 1}}, "network.az_count", "must be at least 2; raise it"),
    ({"network": {"availability_zones": ["us-west-2a"]}}, "network.availability_zones", "at least 2"),
    ({"network": {"availability_zones": ["eu-west-1a", "eu-west-1b"]}}, "availability zone eu-west-1a", "not in region us-west-2; use us-west-2a"),
    # an existing network: ids AWS would refuse, too few subnets, a key of the owned mode beside it
    ({"network": {"existing": {"vpc_id": "vpc-123", "private_subnet_ids": [SUB1, SUB2]}}},
     "network.existing.vpc_id (got 'vpc-123')", "use a VPC id such as vpc-0123456789abcdef0"),
    ({"network": {"existing": {"vpc_id": VPC, "private_subnet_ids": [SUB1, "subnet-xyz"]}}},
     "network.existing.private_subnet_ids.1 (got 'subnet-xyz')", "use a subnet id such as subnet-0123456789abcdef0"),
    ({"network": {"existing": {"vpc_id": VPC, "private_subnet_ids": [SUB1]}}},
     "network.existing.private_subnet_ids", "EKS needs subnets in at least 2 zones; list 2 or more private subnets"),
    ({"network": {"existing": {"vpc_id": VPC, "private_subnet_ids": [SUB1, SUB1]}}},
     "network.existing.private_subnet_ids", "lists a subnet twice; list each once"),
    ({"network": {"existing": {"vpc_id": VPC, "private_subnet_ids": [SUB1, SUB2]}, "single_nat_gateway": True}},
     "network", "with existing (a network the stack does not build), leave out single_nat_gateway: the network's owner decides it"),
    ({"network": {"existing": {"vpc_id": VPC}}}, "network.existing.private_subnet_ids", "is required; add it"),
    ({"cluster": {"node_desired_size": -1}}, "cluster.node_desired_size", "must be at least 1"),
    ({"cluster": {"node_min_size": 3, "node_max_size": 2}}, "cluster", "node_min_size 3 > node_max_size 2"),
    ({"cluster": {"node_desired_size": 5}}, "cluster", "outside node_min_size..node_max_size"),
    ({"cluster": {"version": "1.31.2"}}, "cluster.version", 'such as "1.36"'),
    ({"cluster": {"version": 1.30}}, "cluster.version (got 1.3)", 'write the version in quotes, e.g. "1.36"'),
    ({"karpenter": {"version": "v1.1"}}, "karpenter.version", "such as 1.14.1"),
    ({"backend": {"type": "s3"}}, "backend.bucket", "required"),
    ({"backend": {"type": "gcs"}}, "backend", "type must be one of 's3', 'cloud', 'local'"),
    ({"cluster": {"pod_credentials": "pod-identity"}}, "cluster.pod_credentials", "must be one of 'irsa' or 'pod_identity'"),
    ({"cluster": {"private_access_cidrs": ["10.20.0.0/24", "10.20.0.0/24"]}}, "cluster.private_access_cidrs",
     "lists the same network twice; keep one"),
    ({"cluster": {"private_access_cidrs": ["10.20.0.1/24"]}}, "cluster.private_access_cidrs", "host bits zero"),
    # versions: Karpenter too old and too new for the cluster, AMI releases, the EKS calendar
    ({"karpenter": {"version": "1.1.0"}}, "karpenter.version 1.1.0 supports Kubernetes 1.26 to 1.31, not cluster.version 1.36",
     "set karpenter.version to 1.13.0 or later"),
    ({"cluster": {"version": "1.34"}, "karpenter": {"version": "1.6.2", "ami_alias": "al2023@v20250915"}},
     "karpenter.version 1.6.2 supports Kubernetes 1.26 to 1.33, not cluster.version 1.34", "set karpenter.version to 1.6.6 or later"),
    ({"cluster": {"version": "1.34"}, "karpenter": {"version": "1.7.2", "ami_alias": "al2023@v20250915"}},
     "karpenter.version 1.7.2 supports Kubernetes 1.26 to 1.33, not cluster.version 1.34",
     "set karpenter.version to 1.7.4 or later (1.14.1 is the release this platform is built against), or, for a new "
     "cluster, cluster.version to 1.33"),
    ({"karpenter": {"version": "1.15.0"}}, "karpenter.version 1.15.0 is not in the compatibility table", "use 1.14.1"),
    ({"karpenter": {"version": 1.14}}, "karpenter.version (got 1.14)", 'write the version in quotes, e.g. "1.14.1"'),
    ({"karpenter": {"ami_alias": "al2023@v20241213"}}, "karpenter.ami_alias al2023@v20241213 has AL2023 AMIs for Kubernetes 1.24 to 1.31 only",
     "use al2023@v20260714"),
    ({"karpenter": {"ami_alias": "al2023@v20990101"}}, "karpenter.ami_alias al2023@v20990101 names an AMI release this platform does not know",
     "use al2023@v20260714"),
    ({"cluster": {"version": "1.31"}}, "cluster.version 1.31 reached the end of EKS extended support on 2026-11-26",
     "set cluster.allow_past_end_of_support: true"),
    ({"cluster": {"version": "1.37"}}, "cluster.version 1.37 is not in the EKS calendar", "use 1.36"),
    ({"karpenter": {"replicas": 3}}, "karpenter.replicas 3", "karpenter.replicas 3 > cluster.node_min_size 2"),
    ({"cluster": {"log_retention_days": 42}}, "cluster.log_retention_days", "CloudWatch accepts only"),
    ({"name": "Bad_Name"}, "name", "lower-case letters"),
    ({"name": "a" * 45}, "name", "use at most 44: the IAM role KarpenterController-<name> must fit AWS's 64-character limit"),
    ({"karpenter": {"nodepools": {"stateful": None, "stateless": None, "gpu": {"enabled": False}}}}, "karpenter.nodepools",
     "removes every pool: Karpenter would launch no node at all; keep at least one"),
    ({"karpenter": {"nodepools": {"gpus": None}}}, "karpenter: nodepools.gpus",
     "null removes a default pool (stateful, stateless, gpu), and gpus is none of them; fix the name"),
    ({"karpenter": {"nodepools": {"x": {"instance_categories": ["m"], "labels": {"karpenter.sh/pool": "x"}}}}},
     "karpenter.nodepools.x.labels", "uses the karpenter.sh domain"),
    ({"karpenter": {"nodepools": {"x": {"instance_categories": ["m"], "labels": {"kubernetes.io/hostname": "x"}}}}},
     "karpenter.nodepools.x.labels", "uses the kubernetes.io domain"),
    ({"karpenter": {"nodepools": {"x": {"instance_categories": ["m"], "labels": {"mykarpenter.sh/x": "y"}}}}},
     "karpenter.nodepools.x.labels", "uses the karpenter.sh domain"),
    ({"karpenter": {"nodepools": {"local": {"instance_categories": ["m"], "weight": 0}}}},
     "karpenter.nodepools.local.weight", "must be at least 1"),
    ({"karpenter": {"nodepools": {"Big": {"instance_categories": ["m"]}}}},
     "karpenter.nodepools.Big.(the key)", "use up to 63 lower-case letters"),
    ({"cluster": {"admin_principal_arns": ["arn:aws:iam::123456789012:role/ops.team",
                                           "arn:aws:iam::123456789012:role/ops_team"]}},
     "cluster.admin_principal_arns", "would get the same id"),
    ({"karpenter": {"nodepools": {"x": {"instance_categories": ["m"], "termination_grace_period": "2d"}}}},
     "karpenter.nodepools.x.termination_grace_period", "hours, minutes and seconds"),
    ({"cluster": {"admin_principal_arns": ["arn:aws:sts::123456789012:assumed-role/ops/me"]}},
     "cluster.admin_principal_arns.0", "the role's ARN, not the arn:aws:sts session ARN"),
    ({"cluster": {"support_type": "FOREVER"}}, "cluster.support_type", "must be one of 'EXTENDED' or 'STANDARD'"),
    ({"cluster": {"node_min_size": "two"}}, "cluster.node_min_size", "must be a whole number"),
    ({"karpenter": {"nodepools": {"x": {"capacity_types": ["spot"]}}}}, "karpenter.nodepools.x", "instance_categories or instance_families"),
    ({"karpenter": {"nodepools": {"x": {"instance_families": ["g5"], "taints": ["nvidia.com/gpu"]}}}}, "karpenter.nodepools.x.taints.0", "key=value:Effect"),
    # what AWS or Helm would refuse at apply (issue 17 item 5, issue 16 item 5)
    ({"region": "us-west-3"}, "region (got 'us-west-3')", "is not an AWS region; use one such as us-west-2"),
    ({"backend": {"type": "s3", "bucket": "state-bucket", "region": "eu-west-7"}}, "backend.region (got 'eu-west-7')",
     "is not an AWS region"),
    ({"cluster": {"node_instance_type": "m6i.huge"}}, "cluster.node_instance_type (got 'm6i.huge')",
     "m6i.huge is not an EC2 instance type; the nearest names are"),
    # issue 23 item 7: hints that lead somewhere, one line per mistake
    ({"cluster": {"node_instance_type": "m6i.larg"}}, "cluster.node_instance_type (got 'm6i.larg')",
     "m6i.larg is not an EC2 instance type; the nearest names are m6i.large,"),
    ({"karpenter": {"nodepools": {"x": {"instance_families": ["g5"], "architectures": ["arm64"]}}}},
     "karpenter.nodepools.x", "they have amd64 types only, none for architectures [arm64]; set architectures to "
     "[amd64], or choose families that have arm64 types"),
    ({"karpenter": {"nodepools": {"stateless": {"capacity_types": ["spott"]}}}},
     "karpenter.nodepools.stateless.capacity_types.0 (got 'spott')", "must be one of 'on-demand' or 'spot'"),
    ({"karpenter": {"version": "1.14"}}, "karpenter.version (got '1.14')",
     "write the whole release number, major.minor.patch, such as 1.14.1"),
    ({"karpenter": {"version": "v1.14.1"}}, "karpenter.version (got 'v1.14.1')", "drop the leading 'v': write 1.14.1"),
    # issue 23 item 4: a controller type that cannot hold Karpenter, CoreDNS and the add-ons' controllers
    ({"cluster": {"node_instance_type": "t3.nano", "node_min_size": 1, "node_desired_size": 1}},
     "cluster.node_instance_type t3.nano is too small for the controller nodes: with node_min_size 1",
     "which need 8 pods (a node holds 4), 1684 MiB of memory (a node holds 74), so Karpenter would never be "
     "scheduled and launch no node; use t3.medium (the smallest t3 that fits)"),
    ({"cluster": {"node_instance_type": "t3.small", "node_min_size": 1, "node_desired_size": 1}},
     "cluster.node_instance_type t3.small", "1684 MiB of memory (a node holds 1418)"),
    ({"cluster": {"node_instance_type": "m7g.medium"}}, "cluster.node_instance_type m7g.medium",
     "1305m CPU (a node holds 940)"),
    ({"karpenter": {"version": "1.14.9"}}, "karpenter.version 1.14.9 is not a Karpenter release",
     "(the 1.14.x line goes up to 1.14.1, model/versions.py), so the chart pull would fail at apply after the "
     "network and the cluster are built; use 1.14.1"),
    ({"karpenter": {"nodepools": {"gpu": {"instance_families": ["g5", "g6"], "min_generation": 7}}}},
     "karpenter.nodepools.gpu", "instance_families [g5, g6], architectures [amd64] and min_generation 7 select "
     "no EC2 instance type, so Karpenter would launch nothing for this pool; the newest generation they have is 6; "
     "set min_generation to 6 or lower"),
    ({"karpenter": {"nodepools": {"x": {"instance_categories": ["m"], "min_generation": 9}}}},
     "karpenter.nodepools.x", "instance_categories [m], architectures [amd64] and min_generation 9 select no"),
    ({"karpenter": {"nodepools": {"x": {"instance_families": ["g5", "g6"], "min_generation": None,
                                        "architectures": ["arm64"]}}}},
     "karpenter.nodepools.x", "select no EC2 instance type"),
    ({"karpenter": {"nodepools": {"x": {"instance_families": ["m9z"]}}}}, "karpenter.nodepools.x",
     "m9z: no EC2 instance type has such a category or family"),
    ({"tags": {"aws:team": "x"}}, "tags", "the aws: prefix is reserved for AWS"),
    ({"tags": {"team": "a;b"}}, "tags", "IAM and EKS tags allow only letters, digits, spaces and"),
    ({"tags": {f"k{i}": "v" for i in range(41)}}, "tags", "has 41 tags; use at most 40: AWS allows 50 per resource "
     "and the stack and Karpenter add up to 10 (on a node)"),
    ({"tags": {"karpenter.sh/nodepool": "x"}}, "tags", "is reserved by Karpenter and EKS"),
    # issue 23 item 3: keys AWS treats as one, and keys that shadow the stack's identity tags
    ({"tags": {"Owner": "a", "owner": "b"}}, "tags", "keys 'Owner' and 'owner' differ only in case, and AWS treats"),
    ({"karpenter": {"node_tags": {"CostCenter": "a", "costcenter": "b"}}}, "karpenter.node_tags",
     "keys 'CostCenter' and 'costcenter' differ only in case"),
    ({"tags": {"environment": "dev"}}, "tags", "key 'environment' would replace the stack's own Environment tag"),
    ({"tags": {"Cluster": "other"}}, "tags", "key 'Cluster' would replace the stack's own Cluster tag, which the "
     "destroy-time cleanup and Karpenter's discovery rely on"),
    ({"tags": {"karpenter.sh/discovery": "other"}}, "tags", "would replace the stack's own karpenter.sh/discovery tag"),
    ({"karpenter": {"node_tags": {"managedby": "me"}}}, "karpenter.node_tags", "would replace the stack's own ManagedBy"),
    ({"tags": {"kubernetes.io/cluster/other": "owned"}}, "tags", "is reserved by Karpenter and EKS"),
    ({"tags": {"k" * 129: "v"}}, "tags.kkk", "is 129 characters; use at most 128"),
    ({"tags": {"team": "v" * 257}}, "tags.team", "is 257 characters; use at most 256"),
    ({"backend": {"type": "s3", "bucket": "state-bucket", "key": "/dev/terraform.tfstate"}}, "backend.key",
     "must not start or end with '/'"),
    ({"backend": {"type": "s3", "bucket": "my..state"}}, "backend.bucket", "S3 refuses in a bucket name"),
    ({"backend": {"type": "s3", "bucket": "192.168.5.4"}}, "backend.bucket", "looks like an IP address"),
    ({"backend": {"type": "s3", "bucket": "xn--state"}}, "backend.bucket", "uses xn--, which S3 reserves"),
    ({"backend": {"type": "cloud", "organization": "my org", "workspace": "w"}}, "backend.organization",
     "letters, digits, '-' and '_'"),
    ({"cluster": {"admin_principal_arns": [f"arn:aws:iam::123456789012:role/{'r' * 65}"]}},
     "cluster.admin_principal_arns", "IAM role and user names end at 64 characters"),
    ({"cluster": {"public_access_cidrs": ["10.1.0.0/16"]}}, "cluster.public_access_cidrs",
     "10.1.0.0/16 is inside 10.0.0.0/8, not a public address block"),
]


@pytest.mark.parametrize("patch,field,fix", BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_input_gives_one_line_naming_field_and_fix(tmp_path, patch, field, fix):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _merge(MINIMAL, patch)))
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"env.yaml: {field}"), lines[0]
    assert fix in lines[0]


LIBRARY_WORDS = ("Input should", "Value error", "validation error", "pydantic", "^", "\\d", "[a-z")


@pytest.mark.parametrize("patch,field,fix", BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_messages_use_plain_words(tmp_path, patch, field, fix):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _merge(MINIMAL, patch)))
    assert not [w for w in LIBRARY_WORDS if w in str(err.value)], str(err.value)


def test_every_format_in_the_schema_has_words():
    """A pattern never reaches a user: each one the JSON Schema holds has its explanation."""
    from model.base import FORMAT_HINTS

    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    found = set(patterns(json_schema()))
    assert found and not found - set(FORMAT_HINTS), sorted(found - set(FORMAT_HINTS))


def test_an_empty_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="env.yaml: the file is empty; add at least name and backend"):
        load_config(_write(tmp_path, "# nothing yet\n"))


def test_a_version_eks_has_not_released_yet_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cluster.version 1.36 is not on EKS before 2026-06-02; use 1.35"):
        load_config(_write(tmp_path, MINIMAL), today=dt.date(2026, 3, 1))


def test_a_key_given_twice_is_an_error(tmp_path):
    text = "name: demo\nbackend: {type: s3, bucket: state-bucket}\ncluster:\n  version: \"1.36\"\n  version: \"1.35\"\n"
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert str(err.value) == ("env.yaml: line 5: key 'version' appears twice in the same section (first on line 4); "
                              "keep one")


def test_a_cluster_past_end_of_support_can_be_planned_by_explicit_opt_in(tmp_path):
    """The migration path from 1.31 + Karpenter 1.1.0: Karpenter first, then the cluster."""
    today = dt.date(2026, 11, 29)
    step = {"cluster": {"version": "1.31", "allow_past_end_of_support": True},
            "karpenter": {"version": "1.14.1", "ami_alias": "al2023@v20260610"}}
    cfg = load_config(_write(tmp_path, _merge(MINIMAL, step)), today=today)
    assert cfg.cluster.version == "1.31"
    assert "reached the end of EKS extended support on 2026-11-26" in support_warning(cfg, today)
    with pytest.raises(ConfigError, match="karpenter.version 1.1.0 supports Kubernetes 1.26 to 1.31, not cluster.version 1.32"):
        load_config(_write(tmp_path, _merge(MINIMAL, {"cluster": {"version": "1.32"}, "karpenter": {"version": "1.1.0"}})), today=today)


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _merge(MINIMAL, {"regoin": "x", "cluster": {"node_min_size": 0}})))
    assert len(str(err.value).splitlines()) == 2


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"env.yaml: line 3 is not valid YAML .*; fix the syntax"):
        load_config(_write(tmp_path, "name: x\nbackend: [unclosed\n"))


@pytest.mark.parametrize("k8s,karpenter,alias", [
    ("1.35", "1.9.0", "al2023@v20260114"),   # the first AMI release for 1.35
    ("1.34", "1.6.6", "al2023@v20250915"),   # 1.34 arrived in a patch release of 1.6
    ("1.34", "1.8.0", "al2023@v20260714"),
    ("1.32", "1.2.1", "al2023@v20241225"),   # extended support: accepted, with a warning
])
def test_compatible_pairs_are_accepted(tmp_path, k8s, karpenter, alias):
    cfg = load_config(_write(tmp_path, _merge(MINIMAL, {"cluster": {"version": k8s},
                                                        "karpenter": {"version": karpenter, "ami_alias": alias}})),
                      today=dt.date(2026, 11, 29))
    assert (cfg.cluster.version, cfg.karpenter.version) == (k8s, karpenter)


def _with_version(k8s: str) -> StackConfig:
    return StackConfig.model_validate(_merge(MINIMAL, {"cluster": {"version": k8s, "allow_past_end_of_support": True},
                                                        "karpenter": {"ami_alias": "al2023@v20260714"}}))


def test_support_calendar_warns_with_the_version_to_move_to():
    today = dt.date(2026, 11, 29)
    assert support_warning(_with_version("1.36"), today) is None
    assert support_warning(_with_version("1.35"), today) is None
    soon = support_warning(_with_version("1.34"), today)
    assert "leaves EKS standard support on 2026-12-02" in soon and "move to 1.36 one minor version at a time (2 steps" in soon
    extended = support_warning(_with_version("1.33"), today)
    assert "is in EKS extended support (extra per-hour price) since 2026-07-29, until 2027-07-29" in extended
    over = support_warning(_with_version("1.31"), today)
    assert "end of EKS extended support" in over and over.count("\n") == 0
    older_ami = StackConfig.model_validate(_merge(MINIMAL, {"karpenter": {"ami_alias": "al2023@v20260618"}}))
    (ami_line,) = support_warning(older_ami, today).splitlines()  # one line per warning
    assert "controller node group cannot follow karpenter.ami_alias al2023@v20260618" in ami_line


def test_a_cloud_environment_that_turns_the_public_endpoint_off_is_warned_at_synth():
    """Terraform Cloud's remote runners are outside every VPC: one warning line naming agent pools and the
    config key for the agents' network; none with the public endpoint on, or for another backend."""
    cloud = {"backend": {"type": "cloud", "organization": "o", "workspace": "w"}}
    private = {"cluster": {"endpoint_public_access": False}}
    (line,) = support_warning(StackConfig.model_validate(_merge(_merge(MINIMAL, cloud), private))).splitlines()
    assert line.startswith("warning: demo: cluster.endpoint_public_access is false with the cloud backend")
    assert "agent pool" in line and "cluster.private_access_cidrs" in line
    assert support_warning(StackConfig.model_validate(_merge(MINIMAL, cloud))) is None
    assert support_warning(StackConfig.model_validate(_merge(MINIMAL, private))) is None


def test_pod_identity_needs_a_pinned_agent_and_irsa_stays_the_default():
    """The default stays IRSA (the seed's); Pod Identity needs a pin for the agent add-on, which every minor
    EKS creates has, and which cluster.addon_versions can override."""
    from model import versions

    assert StackConfig.model_validate(MINIMAL).cluster.pod_credentials == "irsa"
    pod = StackConfig.model_validate(_merge(MINIMAL, {"cluster": {"pod_credentials": "pod_identity"}}))
    assert pod.pod_identity and pod.addon_versions["eks-pod-identity-agent"] == "v1.3.10-eksbuild.2"
    for k8s in versions.ADDON_VERSIONS:
        assert versions.missing_addon_pins(k8s, addons=versions.installed_addons(True)) == [], k8s
    assert versions.missing_addon_pins("1.36", {}, ("eks-pod-identity-agent", "nope")) == ["nope"]


def test_addon_versions_are_pinned_per_minor_and_overridable():
    """Add-ons never resolve at plan (AWS moves its defaults): each minor EKS creates has a pin for
    each of them, vpc-cni moves at most one minor between neighbouring minors, and
    cluster.addon_versions replaces a pin; a minor without pins is refused naming the add-ons."""
    from model import versions

    for k8s in ("1.32", "1.33", "1.34", "1.35", "1.36"):
        assert versions.missing_addon_pins(k8s) == [], k8s
    cni = [tuple(map(int, versions.ADDON_VERSIONS[k]["vpc-cni"][1:].split("-")[0].split(".")))
           for k in sorted(versions.ADDON_VERSIONS, key=versions.minor)]
    assert all(b[1] - a[1] <= 1 for a, b in zip(cni, cni[1:])), cni
    cfg = StackConfig.model_validate(_merge(MINIMAL, {"cluster": {"addon_versions": {"vpc-cni": "v1.23.1-eksbuild.1"}}}))
    assert cfg.addon_versions["vpc-cni"] == "v1.23.1-eksbuild.1"
    assert cfg.addon_versions["kube-proxy"] == versions.ADDON_VERSIONS[cfg.cluster.version]["kube-proxy"]


SHIPPED = ("dev", "prod")
"""The environments the project ships. Tests name them, never glob the folder: a user's own
environment file (README: Configuration) must not change what the tests check."""
EXAMPLES = ROOT / "stacks/environments/examples"


def test_shipped_environments_deploy_today_without_a_warning():
    for env in SHIPPED:
        path = ROOT / "stacks/environments" / f"{env}.yaml"
        cfg = load_config(path)
        assert support_warning(cfg) is None, path
        assert (cfg.cluster.version, cfg.karpenter.version) == ("1.36", "1.14.1"), path


def test_committed_json_schema_is_current():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "run: pipenv run python -m stacks.schema"


def test_environment_files_point_editors_at_the_schema():
    for path in [ROOT / "stacks/environments" / f"{env}.yaml" for env in SHIPPED] + sorted(EXAMPLES.glob("*.yaml")):
        assert path.read_text().startswith("# yaml-language-server: $schema=schema.json"), path
    # the examples' schema.json is a link to the environments' one, so the same first line works in both folders
    assert (EXAMPLES / "schema.json").resolve() == SCHEMA_FILE.resolve()


def test_no_test_enumerates_the_environments_folder():
    """A user's own environment file (README: Configuration) never changes what a test checks:
    tests name the shipped environments (SHIPPED, tests/variants.py) or make their own folders."""
    enumerating = ('stacks/environments").glob(', "stacks/environments').glob(", "ENVIRONMENTS_DIR.glob(",
                   'stacks/environments").iterdir(', "ENVIRONMENTS_DIR.iterdir(")
    found = [f"{path.name}: {needle}" for path in sorted((ROOT / "tests").rglob("*.py"))
             for needle in enumerating if needle in path.read_text() and path.name != "test_config.py"
             or path.name == "test_config.py" and path.read_text().count(needle) > 1]
    assert not found, found


def test_examples_work_after_the_copy_the_readme_describes(tmp_path):
    """`cp stacks/environments/examples/tfc.yaml stacks/environments/<name>.yaml`, unedited: the copy
    loads, passes the config check beside the shipped files, and its schema line finds the schema."""
    from stacks.check import check

    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "schema.json").write_text(SCHEMA_FILE.read_text())
    for env in SHIPPED:
        (envs / f"{env}.yaml").write_text((ROOT / "stacks/environments" / f"{env}.yaml").read_text())
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert examples
    for example in examples:
        copy = envs / f"my-{example.name}"
        copy.write_text(example.read_text())
        schema_ref = copy.read_text().splitlines()[0].split("$schema=", 1)[1]
        assert (copy.parent / schema_ref).is_file(), f"{copy.name}: $schema={schema_ref} finds no file"
        load_config(copy)
    assert check([], envs) == 0


def _config_dir(tmp_path: Path, patch: dict) -> Path:
    cfg_dir = tmp_path / "envs"
    cfg_dir.mkdir()
    (cfg_dir / "dev.yaml").write_text(yaml.safe_dump(_merge(MINIMAL, patch)))
    return cfg_dir


def _assert_clean_failure(stderr: str, field: str, fix: str, tmp_path: Path) -> None:
    lines = stderr.strip().splitlines()
    assert lines and all(line.startswith("error: dev.yaml: ") for line in lines), lines
    assert "Traceback" not in stderr and field in stderr and fix in stderr
    assert not (tmp_path / "cdktf.out").exists()


@pytest.mark.parametrize("patch,field,fix", BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_main_exits_2_without_traceback_or_output(tmp_path, monkeypatch, capsys, patch, field, fix):
    """main() in-process for every bad input (the subprocess case below proves the real entry point)."""
    import main

    monkeypatch.setattr(main, "CONFIG_DIR", str(_config_dir(tmp_path, patch)))
    monkeypatch.chdir(tmp_path)
    assert main.main() == 2
    _assert_clean_failure(capsys.readouterr().err, field, fix, tmp_path)


def test_python_main_py_exits_2_without_traceback_or_output(tmp_path):
    patch, field, fix = BAD_INPUTS[1]
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PLATFORM_CONFIG_DIR": str(_config_dir(tmp_path, patch))}, timeout=120)
    assert proc.returncode == 2
    _assert_clean_failure(proc.stderr, field, fix, tmp_path)


def test_unknown_environment_name_is_refused(tmp_path, monkeypatch, capsys):
    """In a folder of its own (dev.yaml only), so an environment a user adds can never be the unknown name."""
    import main

    monkeypatch.setattr(main, "CONFIG_DIR", str(_config_dir(tmp_path, {})))
    monkeypatch.setattr(main, "ENVIRONMENTS", ["staging"])
    monkeypatch.chdir(tmp_path)
    assert main.main() == 2
    assert capsys.readouterr().err == ("error: no environment named staging: choose one of dev, state-bootstrap "
                                       "(each environment is a file envs/<name>.yaml)\n")


def test_the_cluster_name_given_for_an_environment_is_explained(tmp_path, monkeypatch, capsys):
    """Issue 23 item 7: `scripts/synth.sh platform-dev` (the name: value) says which environment it is."""
    import main

    monkeypatch.setattr(main, "CONFIG_DIR", str(_config_dir(tmp_path, {"name": "platform-dev"})))
    monkeypatch.setattr(main, "ENVIRONMENTS", ["platform-dev"])
    monkeypatch.chdir(tmp_path)
    assert main.main() == 2
    assert capsys.readouterr().err == ("error: platform-dev is the cluster name (name:) in dev.yaml: its environment "
                                       "is dev; name the environment (the file's name without .yaml), not the "
                                       "cluster\n")


def test_vendored_aws_data_holds_everything_the_installed_botocore_knows():
    """model/aws_data.json (regions, EC2 instance types) is never older than the botocore the test
    tools install: refresh it (python -m model.aws) when a newer botocore lists more."""
    import importlib.util

    from model import aws

    package = Path(importlib.util.find_spec("botocore").origin).parent
    regions, types = aws.read_botocore(package)
    assert not set(regions) - aws.regions() and not set(types) - aws.instance_types()
    assert {"us-west-2", "eu-west-1"} <= aws.regions() and {"m6i.large", "m8i.large", "g7e.2xlarge"} <= aws.instance_types()


def _installed(package: str) -> Path:
    import importlib.util

    return Path(importlib.util.find_spec(package).origin).parent


def test_the_refresh_command_works(tmp_path):
    """Issue 23 item 7: the command the hints name rewrites the data from the two packages it names."""
    from model import aws

    out = tmp_path / "aws_data.json"
    assert aws.main([str(_installed("botocore")), str(_installed("moto"))], data=out) == 0
    written = json.loads(out.read_text())
    assert written["sizes"]["t3.nano"] == [2, 512, 4] and "us-west-2" in written["regions"]
    assert written["source"].startswith("botocore ") and "; sizes: moto 5.2.5" in written["source"]


def test_the_refresh_command_without_its_packages_says_how_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "model.aws"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: usage: python -m model.aws <botocore package> <moto package>")
    assert len(proc.stderr.splitlines()) == 1


def test_vendored_sizes_cover_every_type_the_installed_moto_describes():
    from model import aws

    moto = aws.read_moto_sizes(_installed("moto"))
    assert {t: v for t, v in moto.items() if t in aws.instance_types()} == {
        t: v for t, v in aws.sizes().items() if t in moto}
    assert aws.sizes()["m6i.large"] == [2, 8192, 29]  # 3 interfaces x 10 addresses: (10 - 1) x 3 + 2


def test_the_state_bootstraps_log_bucket_name_fits_s3_for_every_state_bucket_name():
    from stacks.config import log_bucket_name

    assert log_bucket_name("my-org-terraform-state") == "my-org-terraform-state-logs"  # unchanged where it fits
    assert log_bucket_name("b" * 58) == "b" * 58 + "-logs"
    long = [log_bucket_name("b" * 62 + tail) for tail in "xy"]
    assert all(len(n) == 63 for n in long) and long[0] != long[1]


def test_readme_configuration_reference_is_generated_from_the_models():
    from stacks.schema import END, README, START, readme_with_reference

    text = README.read_text()
    assert START in text and END in text
    assert readme_with_reference(text) == text, "run: pipenv run python -m stacks.schema"
    for key in ("`network.vpc_cidr`", "`cluster.node_desired_size`", "`karpenter.version`", "`backend.bucket` (s3)"):
        assert key in text


def test_a_karpenter_release_too_new_for_the_cluster_is_refused(tmp_path, monkeypatch):
    """Both directions: a release whose lowest supported Kubernetes is above the cluster's."""
    from model import versions

    monkeypatch.setitem(versions.KARPENTER, "1.14", versions.KarpenterMinor("1.33", "1.36"))
    old = {"cluster": {"version": "1.32"}, "karpenter": {"ami_alias": "al2023@v20260714"}}
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _merge(MINIMAL, old)), today=dt.date(2026, 11, 29))
    assert str(err.value) == ("env.yaml: karpenter.version 1.14.1 supports Kubernetes 1.33 to 1.36, not cluster.version "
                              "1.32; upgrade the cluster to 1.33 first or use an older Karpenter release")


# ----------------------------------------------------------------------------- environments that collide
# Issue 23 item 2 / issue 20 item 3: two files that would build or record the same thing are refused
# at synth, naming both files (DESIGN fact 27: IAM names are global, EKS cluster names regional).


def _environments(tmp_path: Path, **files: dict) -> Path:
    for env, data in files.items():
        _write(tmp_path, data, f"{env}.yaml")
    return tmp_path


def _refusal(directory: Path, names: tuple[str, ...] = ()) -> str:
    from stacks.config import load_environments

    with pytest.raises(ConfigError) as err:
        load_environments(list(names), directory)
    return str(err.value)


COPY = _merge(MINIMAL, {"backend": {"type": "s3", "bucket": "state-bucket", "key": "copy/terraform.tfstate"}})


def test_a_copied_file_with_its_name_unchanged_is_refused(tmp_path):
    message = _refusal(_environments(tmp_path, dev=MINIMAL, qa=MINIMAL))
    assert message == ("dev.yaml and qa.yaml: both build the cluster demo in us-west-2: two states would manage the "
                       "same cluster, roles (demo-cluster, KarpenterNodeRole-demo, demo-controller-node, ...) and "
                       "queue; give each file its own name")


def test_a_named_run_is_refused_too(tmp_path):
    """`stacks.check qa` (and `synth.sh qa`) must not pass while qa.yaml collides with a file it leaves out."""
    assert _refusal(_environments(tmp_path, dev=MINIMAL, qa=MINIMAL), ("qa",)).startswith("qa.yaml and dev.yaml: both build the cluster demo")


def _two_regions(tmp_path: Path) -> str:
    other = _merge(COPY, {"region": "eu-west-1", "backend": {"type": "s3", "bucket": "state-bucket-eu"}})
    return _refusal(_environments(tmp_path, dev=MINIMAL, eu=other))


def test_one_name_in_two_regions_is_refused_naming_both_files(tmp_path):
    message = _two_regions(tmp_path)
    assert message.startswith("dev.yaml and eu.yaml: both name the cluster demo (us-west-2 and eu-west-1): IAM names "
                              "are global to an account"), message
    assert "EntityAlreadyExists; give each file its own name" in message


def _derived(config: StackConfig, what: str) -> str:
    from model import names

    return names.derived(what, config.name)


@pytest.mark.parametrize("what", ["cluster_role", "node_role", "controller_node_role", "controller_role", "ebs_csi_role",
                                  "flow_logs_role", "controller_policy"])
def test_iam_role_and_policy_names_collide_across_regions(tmp_path, what):
    """Every IAM role and policy name is the cluster name's alone: another region gives the same name."""
    from model import names

    us = load_config(_write(tmp_path, MINIMAL, "us.yaml"))
    eu = load_config(_write(tmp_path, _merge(MINIMAL, {"region": "eu-west-1"}), "eu.yaml"))
    assert what in names.GLOBAL and _derived(us, what) == _derived(eu, what)
    assert "IAM names are global" in _two_regions(tmp_path)


def test_instance_profiles_collide_across_regions(tmp_path):
    """Karpenter creates its instance profiles for the EC2NodeClass's role and scopes them by the cluster
    tag: both are the cluster name's alone, so two regions' controllers would share one role and tag."""
    from model import names
    from model.karpenter import KarpenterConfig, ec2_node_class

    roles = {ec2_node_class(name="demo", role_name=names.derived("node_role", "demo"), config=KarpenterConfig(),
                            tags={})["spec"]["role"] for _ in ("us-west-2", "eu-west-1")}
    assert roles == {"KarpenterNodeRole-demo"} and "node_role" in names.GLOBAL
    assert names.derived("cluster_tag_key", "demo") == "kubernetes.io/cluster/demo"
    assert "IAM names are global" in _two_regions(tmp_path)


def test_one_state_bucket_in_two_regions_is_refused(tmp_path):
    """S3 bucket names are global: the state bucket (and its <bucket>-logs) exists in one region only."""
    from stacks.config import log_bucket_name

    eu = _merge(MINIMAL, {"name": "demo-eu", "region": "eu-west-1"})
    message = _refusal(_environments(tmp_path, dev=MINIMAL, eu=eu))
    assert log_bucket_name("state-bucket") == "state-bucket-logs"
    assert message == ("dev.yaml and eu.yaml: the state bucket state-bucket is in us-west-2 for one and eu-west-1 "
                       "for the other, but an S3 bucket name is global and the bucket lives in one region; set "
                       "backend.region: us-west-2 in both (or use two buckets)")


@pytest.mark.parametrize("backend,said", [
    ({"type": "s3", "bucket": "state-bucket", "key": "shared/terraform.tfstate"},
     "the state object s3://state-bucket/shared/terraform.tfstate"),
    ({"type": "cloud", "organization": "acme", "workspace": "platform"},
     "the Terraform Cloud workspace acme/platform"),
    ({"type": "local", "path": "shared.tfstate"}, "the state file shared.tfstate"),
])
def test_two_files_naming_one_state_location_are_refused(tmp_path, backend, said):
    a = _merge(MINIMAL, {"backend": backend})
    b = _merge(a, {"name": "demo-two"})
    message = _refusal(_environments(tmp_path, a=a, b=b))
    assert message.startswith(f"a.yaml and b.yaml: both keep their state in {said}, so each apply would overwrite"), message


def test_the_default_state_keys_of_two_files_differ(tmp_path):
    from stacks.config import load_environments

    other = _merge(MINIMAL, {"name": "demo-two"})
    assert list(load_environments([], _environments(tmp_path, a=MINIMAL, b=other))) == ["a", "b"]
