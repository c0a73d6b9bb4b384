"""A plan that removes a running NodePool says so in words (issue 23 item 1).

The stack carries a ``check`` block (``model.karpenter.removed_pools_check``) whose scoped data
source lists the running cluster's NodePools at plan. The helm and kubernetes providers cannot be
installed here, so the emulator rungs strip it (tests/tf.py); these tests run its condition and
message through real Terraform instead: ``terraform console`` evaluates the expressions with the
running NodePools given as a value, and ``terraform validate`` checks the block's shape with a data
source of the aws provider in the kubernetes one's place.
"""

from __future__ import annotations

import json

import pytest

from model.karpenter import RUNNING_POOLS, removed_pools_check
from tests.tf import Terraform, strip_unavailable

RUNNING = ["stateful", "stateless", "gpu"]


def test_every_stack_warns_about_the_pools_it_would_remove(synth):
    for stack in ("dev", "prod", "t-cloud"):
        check = synth[stack]["check"]["nodepools-removed"]
        source = check["data"]["kubernetes_resources"][RUNNING_POOLS]
        assert (source["api_version"], source["kind"]) == ("karpenter.sh/v1", "NodePool")
        assert source["depends_on"] and source["depends_on"][0].startswith("helm_release.karpenter_crd-release")
        assert '["gpu", "stateful", "stateless"]' in check["assert"][0]["condition"]


def test_the_emulator_copy_drops_the_check_with_its_provider(synth):
    stripped, removed = strip_unavailable(synth["dev"], {"aws"})
    assert "nodepools-removed" not in stripped.get("check", {}) and "check.nodepools-removed" in removed
    assert "spot_service_linked_role" in stripped["check"]  # the aws provider's checks stay


def _evaluate(tmp_path, check: dict, running: list[str]) -> tuple[str, str]:
    """(condition, message) as Terraform evaluates them with ``running`` NodePools in the cluster:
    the two templates become locals (Terraform JSON evaluates them exactly as in the check block)."""
    tf = Terraform(tmp_path)
    here = json.loads(json.dumps(check).replace(f"data.kubernetes_resources.{RUNNING_POOLS}.objects", "local.objects"))
    tf.write({"locals": {"objects": [{"metadata": {"name": n}} for n in running],
                         "condition": here["condition"], "message": here["error_message"]}})
    proc = tf.run("console", label="console", check=False, timeout=120,
                  stdin="jsonencode([local.condition, local.message])\n")
    assert proc.returncode == 0, proc.stderr
    condition, message = json.loads(json.loads(proc.stdout.strip()))
    return str(condition).lower(), message


@pytest.mark.parametrize("config,running,kept", [
    (["stateful", "stateless"], RUNNING, False),
    (RUNNING, RUNNING, True),
    ([*RUNNING, "batch"], RUNNING, True),  # adding a pool removes none
    (RUNNING, [], True),  # a first apply: nothing runs yet
])
def test_terraform_evaluates_the_warning(tmp_path, config, running, kept):
    check = removed_pools_check(config, ["helm_release.crds"])["assert"][0]
    condition, message = _evaluate(tmp_path, check, running)
    assert condition == str(kept).lower()
    if not kept:
        assert message.startswith("karpenter.nodepools: this plan deletes the running NodePool gpu: Karpenter "
                                  "drains and terminates its nodes"), message


@pytest.mark.scan
def test_terraform_accepts_the_check_block(tmp_path, synth):
    """The block's shape, with aws_partition standing in for kubernetes_resources (same place, same
    depends_on on a managed resource), validated by Terraform against the aws provider's schema."""
    check = json.loads(json.dumps(synth["dev"]["check"]["nodepools-removed"]))
    check["data"] = {"aws_partition": {RUNNING_POOLS: {"depends_on": ["terraform_data.crds"]}}}
    body = json.dumps(check).replace(f"data.kubernetes_resources.{RUNNING_POOLS}.objects",
                                     f"[{{metadata = {{name = data.aws_partition.{RUNNING_POOLS}.partition}}}}]")
    doc = {"terraform": {"required_providers": {"aws": synth["dev"]["terraform"]["required_providers"]["aws"]}},
           "provider": {"aws": [{"region": "us-west-2"}]},
           "resource": {"terraform_data": {"crds": {}}}, "check": {"nodepools-removed": json.loads(body)}}
    tf = Terraform(tmp_path)
    tf.write(doc)
    tf.run("init", "-backend=false", "-no-color", label="init")
    result = json.loads(tf.run("validate", "-json", "-no-color", check=False, label="validate").stdout)
    assert result["valid"] and result["error_count"] == 0, result["diagnostics"]
