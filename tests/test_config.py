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
    assert cfg.cluster.version == "1.31" and cfg.karpenter.version == "1.1.0"
    assert cfg.backend.type == "s3" and cfg.backend.encrypt is True and cfg.backend.use_lockfile is True
    assert set(cfg.karpenter.nodepools) == {"stateful", "stateless", "gpu"}
    assert cfg.karpenter_replicas == 2 and cfg.kubernetes_auth_mode == "exec"


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


BAD_INPUTS = [
    # (patch, field named in the message, words of the fix)
    ({"nmae": "x"}, "nmae", "unknown key"),
    ({"network": {"vpc_cidr": "10.0.0.0/33"}}, "network.vpc_cidr", "CIDR"),
    ({"network": {"vpc_cidr": "10.0.0.1/16"}}, "network.vpc_cidr", "CIDR"),
    ({"network": {"vpc_cidr": "10.0.0.0/24", "private_subnet_newbits": 1}}, "network", "do not fit"),
    ({"network": {"az_count": 1}}, "network.az_count", "must be at least 2; raise it"),
    ({"network": {"availability_zones": ["us-west-2a"]}}, "network.availability_zones", "at least 2"),
    ({"network": {"availability_zones": ["eu-west-1a", "eu-west-1b"]}}, "availability zone 'eu-west-1a'", "not in region us-west-2; use us-west-2a"),
    ({"cluster": {"node_desired_size": -1}}, "cluster.node_desired_size", "must be at least 1"),
    ({"cluster": {"node_min_size": 3, "node_max_size": 2}}, "cluster", "node_min_size 3 > node_max_size 2"),
    ({"cluster": {"node_desired_size": 5}}, "cluster", "outside node_min_size..node_max_size"),
    ({"cluster": {"version": "1.31.2"}}, "cluster.version", 'such as "1.31"'),
    ({"karpenter": {"version": "v1.1"}}, "karpenter.version", "such as 1.1.0"),
    ({"backend": {"type": "s3"}}, "backend.bucket", "required"),
    ({"backend": {"type": "gcs"}}, "backend", "type must be one of 's3', 'cloud', 'local'"),
    ({"cluster": {"version": "1.32"}}, "karpenter_version 1.1.0 supports Kubernetes <= 1.31", "set cluster.version to 1.31 or karpenter.version to >= 1.2.0"),
    ({"karpenter": {"replicas": 3}}, "karpenter.replicas 3", "karpenter.replicas 3 > cluster.node_min_size 2"),
    ({"cluster": {"log_retention_days": 42}}, "cluster.log_retention_days", "CloudWatch accepts only"),
    ({"name": "Bad_Name"}, "name", "lower-case letters"),
    ({"karpenter": {"nodepools": {"x": {"capacity_types": ["spot"]}}}}, "karpenter.nodepools.x", "instance_categories or instance_families"),
    ({"karpenter": {"nodepools": {"x": {"instance_families": ["g5"], "taints": ["nvidia.com/gpu"]}}}}, "karpenter.nodepools.x.taints.0", "key=value:Effect"),
]


@pytest.mark.parametrize("patch,field,fix", BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_input_gives_one_line_naming_field_and_fix(tmp_path, patch, field, fix):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _merge(MINIMAL, patch)))
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"env.yaml: {field}"), lines[0]
    assert fix in lines[0]


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, _merge(MINIMAL, {"regoin": "x", "cluster": {"node_min_size": 0}})))
    assert len(str(err.value).splitlines()) == 2


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"env.yaml: line 3 is not valid YAML .*; fix the syntax"):
        load_config(_write(tmp_path, "name: x\nbackend: [unclosed\n"))


def test_compatible_newer_pair_is_accepted(tmp_path):
    cfg = load_config(_write(tmp_path, _merge(MINIMAL, {"cluster": {"version": "1.32"}, "karpenter": {"version": "1.2.1"}})))
    assert cfg.cluster.version == "1.32"


def test_support_calendar_warns_with_the_pair_to_move_to():
    cfg = StackConfig.model_validate(MINIMAL)
    assert support_warning(cfg, dt.date(2025, 6, 1)) is None  # 1.31 in standard support
    soon = support_warning(cfg, dt.date(2026, 10, 1))
    assert "ends EKS extended support on 2026-11-26" in soon and "karpenter.version >= " in soon
    over = support_warning(cfg, dt.date(2026, 11, 27))
    assert "end of EKS extended support" in over and over.count("\n") == 0


def test_committed_json_schema_is_current():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "run: pipenv run python -m stacks.schema"


def test_environment_files_point_editors_at_the_schema():
    for path in (ROOT / "stacks/environments").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=schema.json"), path


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
    import main

    monkeypatch.setattr(main, "ENVIRONMENTS", ["staging"])
    monkeypatch.chdir(tmp_path)
    assert main.main() == 2
    assert "PLATFORM_ENVIRONMENTS names staging, but only dev, prod exist" in capsys.readouterr().err


def test_readme_configuration_reference_is_generated_from_the_models():
    from stacks.schema import END, README, START, readme_with_reference

    text = README.read_text()
    assert START in text and END in text
    assert readme_with_reference(text) == text, "run: pipenv run python -m stacks.schema"
    for key in ("`network.vpc_cidr`", "`cluster.node_desired_size`", "`karpenter.version`", "`backend.bucket` (s3)"):
        assert key in text
