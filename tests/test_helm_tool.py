"""The real-Helm rung, the part that needs no synthesized stack (it runs while the session's synth
worker is still synthesizing): the pinned binary, how Helm reads the values ``model.karpenter.to_yaml``
writes, and how a failing lint is reported. The rest is tests/test_helm.py."""

from __future__ import annotations

import pytest

from model.karpenter import NodePoolConfig, node_pool, to_yaml
from tests import helm as helm_tool
from tests.conftest import ROOT

NODEPOOLS_CHART = ROOT / "charts" / "karpenter-nodepools"


def test_helm_is_the_pinned_helm_3(helm):
    assert helm.version() == helm_tool.HELM_VERSION
    assert helm.version().startswith("v3."), "the Terraform helm provider 3.x embeds Helm 3"


# Valid label values that PyYAML would write plain and Go's YAML (Helm, the helm provider) reads as a
# boolean or a number; model.karpenter.to_yaml quotes every string.
@pytest.mark.parametrize("value", ["y", "n", "Y", "N", "1e3", "1e-3", "0o17", "0B11"])
def test_every_label_value_the_config_accepts_reaches_helm_as_the_same_string(helm, value):
    pool = NodePoolConfig(instance_categories=["m"], labels={"example.com/flag": value})
    built = [node_pool("p", pool)]
    objects = helm.template(NODEPOOLS_CHART, to_yaml({"manifests": built}), release="karpenter-nodepools",
                            namespace="karpenter")
    assert objects == built


def test_a_failing_lint_raises_with_helms_message(helm):
    with pytest.raises(helm_tool.HelmError, match=r"(?s)lint --strict.*\[ERROR\] templates/.*range can't iterate over oops"):
        helm.lint(NODEPOOLS_CHART, "manifests: oops\n")
