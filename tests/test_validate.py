"""`terraform validate` of every synthesized stack, offline through the provider mirror.

Where helm/kubernetes provider binaries are not installable here, a copy without them is validated,
and the test output says exactly what was left out."""

from __future__ import annotations

import json

import pytest

from tests.progress import progress
from tests.tf import Terraform, available_providers, strip_unavailable
from tests.variants import VARIANTS

pytestmark = pytest.mark.scan


@pytest.mark.parametrize("stack", [*VARIANTS, "state-bootstrap"])
def test_terraform_validate(stack, synth, tmp_path):
    doc = synth[stack]
    keep = available_providers(doc)
    validated, removed = strip_unavailable(doc, keep)
    # The backend needs credentials at init; validation does not (init -backend=false).
    tf = Terraform(tmp_path)
    tf.write(validated)
    tf.run("init", "-backend=false", "-no-color", label=f"{stack}: init")
    proc = tf.run("validate", "-json", "-no-color", check=False, label=f"{stack}: validate")
    result = json.loads(proc.stdout)
    scope = "whole stack" if not removed else f"all but {len(removed)} helm/kubernetes addresses ({', '.join(removed[:6])}...)"
    progress(f"[validate] {stack}: {scope}")
    assert result["valid"], json.dumps(result["diagnostics"], indent=1)
    assert result["error_count"] == 0 and result["warning_count"] == 0, result["diagnostics"]
