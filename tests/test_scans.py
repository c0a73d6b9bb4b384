"""Security scan rungs over the synthesized Terraform JSON: checkov and parliament (IAM lint).

checkov 3.3.30 (``--framework terraform_json``, offline) runs once over every stack of the session.
A failed check passes the rung only when ``scan_config/checkov_suppressions.yaml`` accepts it for
that resource with a reason; checkov cannot suppress per resource in Terraform JSON itself (see
``scan_config/checkov.yaml``). Suppressions that match nothing fail the rung, so they cannot outlive
the finding they excuse.

parliament 1.6.4 (with its community auditors) lints every IAM policy document of every stack,
extracted by ``tests/iam_policies.py`` with ``${...}`` references replaced by placeholder ARNs.
Every finding fails the rung unless ``scan_config/parliament.yaml`` accepts it with a reason.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import iam_policies
from tests.conftest import load_yaml
from tests.progress import progress
from tests.variants import VARIANTS

pytestmark = pytest.mark.scan

CONFIG = Path(__file__).resolve().parent / "scan_config"
REQUIRED = ("dev", "prod")  # the shipped environments must always be among the scanned stacks


def _stacks(synth) -> list[str]:
    """Every stack the session synthesized (environments, test variants, any other stack such as
    the state bucket): one checkov process covers them all in a few seconds."""
    found = sorted(p.parent.name for p in (synth.outdir / "stacks").glob("*/cdk.tf.json"))
    assert set(REQUIRED) <= set(found) and set(VARIANTS) <= set(found), found
    return found


def _checkov() -> str:
    local = Path(sys.executable).parent / "checkov"
    found = str(local) if local.exists() else shutil.which("checkov")
    if not found:
        pytest.fail("checkov is not installed; run scripts/install.sh --dev (Pipfile [dev-packages] pins it)")
    return found


def _address(reported: str, doc: dict) -> str:
    """checkov's resource name -> Terraform address.

    Its Python checks report ``resource.<name>`` / ``data.<name>`` (type dropped) in Terraform JSON,
    its graph checks ``<type>.<name>``; suppressions are written against real addresses."""
    block, _, rest = reported.partition(".")
    if block in ("resource", "data"):
        for rtype, items in doc.get(block, {}).items():
            if rest in items:
                return f"{rtype}.{rest}" if block == "resource" else f"data.{rtype}.{rest}"
        return reported
    if block == "provider":
        return reported
    if rest in doc.get("resource", {}).get(block, {}):
        return reported
    if rest in doc.get("data", {}).get(block, {}):
        return f"data.{reported}"
    return reported


def _load(name: str) -> object:
    return load_yaml((CONFIG / name).read_text())


def _check_entries(entries: list[dict], required: set[str], allowed: set[str], source: str) -> None:
    for entry in entries:
        missing, unknown = required - set(entry), set(entry) - allowed
        assert not missing and not unknown, f"{source}: entry {entry} lacks {sorted(missing)} / has unknown {sorted(unknown)}"
        assert str(entry["reason"]).strip() and "\n" not in str(entry["reason"]).strip(), \
            f"{source}: every entry needs a one-line reason: {entry}"


# ----------------------------------------------------------------------------- checkov


def _scannable_copies(synth, stacks: list[str], root: Path) -> list[str]:
    """Each stack's JSON without its top-level ``import`` blocks and ``terraform.required_version``, as
    ``<stack>/cdk.tf.json`` under ``root``: checkov 3.3.30's Terraform JSON parser fails on both (an
    import block with ``for_each``; a plain string inside the ``terraform`` block), a parsing error that
    hides every finding, and neither creates anything a security check could judge."""
    files = []
    for stack in stacks:
        doc = {k: v for k, v in synth[stack].items() if k != "import"}
        if "terraform" in doc:
            doc["terraform"] = {k: v for k, v in doc["terraform"].items() if k != "required_version"}
        path = root / stack / "cdk.tf.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
        files.append(str(path.relative_to(root)))
    return files


def test_checkov_passes_every_stack_with_only_reasoned_suppressions(synth, tmp_path):
    suppressions: list[dict] = _load("checkov_suppressions.yaml") or []
    _check_entries(suppressions, {"check", "resource", "reason"}, {"check", "resource", "reason"},
                   "checkov_suppressions.yaml")
    scanned = _stacks(synth)
    root = tmp_path / "stacks"
    files = _scannable_copies(synth, scanned, root)

    started = time.monotonic()
    proc = subprocess.run(
        [_checkov(), "--config-file", str(CONFIG / "checkov.yaml"), *(a for f in files for a in ("-f", f))],
        cwd=root, capture_output=True, text=True, timeout=600,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode in (0, 1), f"checkov exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert [r.get("check_type") for r in reports] == ["terraform_json"], [r.get("check_type") for r in reports]
    report = reports[0]
    assert report["summary"]["parsing_errors"] == 0, report["summary"]

    per_stack: dict[str, Counter] = {s: Counter() for s in scanned}
    used = [0] * len(suppressions)
    suppressed: list[tuple[str, str, str, str]] = []
    failures: list[str] = []
    for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
        for rec in report["results"].get(outcome, []):
            stack = rec["file_path"].strip("/").split("/")[0]
            address = _address(rec["resource"], synth[stack])
            if outcome != "failed_checks":
                per_stack[stack][outcome.split("_")[0]] += 1
                continue
            matches = [i for i, e in enumerate(suppressions)
                       if e["check"] == rec["check_id"] and fnmatch.fnmatchcase(address, e["resource"])]
            if matches:
                used[matches[0]] += 1
                per_stack[stack]["suppressed"] += 1
                suppressed.append((stack, rec["check_id"], address, suppressions[matches[0]]["reason"]))
            else:
                per_stack[stack]["failed"] += 1
                failures.append(f"{stack}: {rec['check_id']} {address} ({rec['check_name']}) "
                                f"lines {rec.get('file_line_range')}")

    progress(f"[checkov {report['summary']['checkov_version']}] {len(scanned)} stacks in {elapsed:.1f}s "
          f"(one process)")
    for stack, counts in per_stack.items():
        progress(f"  {stack:15} passed {counts['passed']:3}  failed {counts['failed']:2}  "
              f"skipped {counts['suppressed'] + counts['skipped']:2} "
              f"({counts['suppressed']} by checkov_suppressions.yaml, {counts['skipped']} by checkov)")
    for (check, address, reason), n in Counter((c, a, r) for _, c, a, r in suppressed).items():
        progress(f"  suppressed x{n}: {check} {address}: {reason}")

    _verdict("checkov failures (fix them; suppress only with a reason in tests/scan_config/checkov_suppressions.yaml)",
             failures, "checkov suppressions that match no failure (remove them)", suppressions, used)


# ----------------------------------------------------------------------------- parliament


def _parliament():
    """parliament with its community auditors' config loaded (it imports ``pkg_resources``: the
    Pipfile pins setuptools 80, the last release that ships it)."""
    import parliament

    parliament.override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
    return parliament


def _ignored(entry: dict, policy: iam_policies.Policy, finding) -> bool:
    """``entry`` of parliament.yaml accepts ``finding`` (``detail`` is searched in detail + location:
    the community auditors put the offending actions in the location)."""
    return (entry["issue"] == finding.issue
            and fnmatch.fnmatchcase(policy.address, entry.get("policy", "*"))
            and entry.get("kind", policy.kind) == policy.kind
            and re.search(entry.get("detail", ""), f"{finding.detail} {finding.location}") is not None)


def _covered_by_other_statements(parliament, document: dict, finding) -> bool:
    """A RESOURCE_MISMATCH that the policy as a whole does not have.

    parliament checks each statement alone: an action split over statements with different
    conditions (upstream Karpenter's ec2:RunInstances / ec2:CreateFleet: unconditioned on images,
    subnets and security groups, tag-conditioned on the instances, volumes and fleets it creates)
    is flagged in every one of them. It is resolved when every (action, required ARN format) it lists
    is granted on a matching resource by some Allow statement of the same policy."""
    if finding.issue != "RESOURCE_MISMATCH" or not isinstance(finding.detail, list):
        return False
    allows = [s for s in document.get("Statement", []) if s.get("Effect") == "Allow" and "Action" in s]

    def granted(action: str, required: str) -> bool:
        for stmt in allows:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            expanded = {f"{a['service']}:{a['action']}".lower() for pattern in actions
                        for a in parliament.expand_action(pattern)}
            if action.lower() not in expanded:
                continue
            resources = stmt.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                if resource == "*" or (required != "*" and parliament.is_arn_strictly_valid("", required, resource)):
                    return True
        return False

    return all(granted(m["action"], m["required_format"]) for m in finding.detail)


def _deployer_policies(doc: dict, stack: str) -> list[iam_policies.Policy]:
    """The deployer policy of an environment stack (model/permissions.py; ``python -m stacks.deployer``),
    addressed ``deployer:<stack>-<n>``; the state-bootstrap stack's copies are its aws_iam_policy resources."""
    from model import permissions

    if "aws_eks_cluster" not in doc.get("resource", {}):
        return []
    documents = permissions.deployer_policy(doc, account=iam_policies.ACCOUNT).documents
    return [iam_policies.Policy(address=f"deployer:{stack}-{i}", kind="identity", document=d)
            for i, d in enumerate(documents, 1)]


def test_parliament_finds_nothing_unaccepted_in_any_iam_policy(synth):
    ignores: list[dict] = (_load("parliament.yaml") or {}).get("ignore", [])
    _check_entries(ignores, {"issue", "reason"}, {"issue", "policy", "kind", "detail", "reason"}, "parliament.yaml")

    started = time.monotonic()
    parliament = _parliament()
    used = [0] * len(ignores)
    problems: list[str] = []
    accepted: Counter = Counter()
    resolved: Counter = Counter()
    counts: dict[str, Counter] = {}
    scanned = _stacks(synth)
    for stack in scanned:
        policies = iam_policies.extract(synth[stack]) + _deployer_policies(synth[stack], stack)
        counts[stack] = Counter(p.kind for p in policies)
        for policy in policies:
            text = json.dumps(policy.as_lintable(), indent=1)
            assert "${" not in text, f"{stack}: {policy.address} kept a Terraform reference: {text}"
            for finding in parliament.analyze_policy_string(text, filepath=policy.address,
                                                            include_community_auditors=True).findings:
                finding = parliament.enhance_finding(finding)  # severity and title from parliament's config
                if _covered_by_other_statements(parliament, policy.as_lintable(), finding):
                    resolved[policy.address] += 1
                    continue
                matches = [i for i, e in enumerate(ignores) if _ignored(e, policy, finding)]
                if matches:
                    used[matches[0]] += 1
                    accepted[(finding.issue, policy.address, ignores[matches[0]]["reason"])] += 1
                    continue
                problems.append(f"{stack}: {policy.address} ({policy.kind}, used by {', '.join(policy.used_by) or 'nothing'}): "
                                f"{finding.severity} {finding.issue}: {finding.detail} at {finding.location}")
    elapsed = time.monotonic() - started

    progress(f"[parliament {parliament.__version__}] {sum(sum(c.values()) for c in counts.values())} policies in "
          f"{len(scanned)} stacks in {elapsed:.1f}s")
    for stack, c in counts.items():
        progress(f"  {stack:15} " + ", ".join(f"{n} {kind}" for kind, n in sorted(c.items())))
    for address, n in resolved.items():
        progress(f"  resolved x{n}: RESOURCE_MISMATCH {address}: each listed action is granted on that ARN type "
              "by another statement of the policy")
    for (issue, address, reason), n in accepted.items():
        progress(f"  accepted x{n}: {issue} {address}: {reason}")

    _verdict("parliament findings (fix the policy; accept only with a reason in tests/scan_config/parliament.yaml)",
             problems, "parliament ignores that match nothing (remove them)", ignores, used)


def _verdict(problems_title: str, problems: list[str], stale_title: str, entries: list, used: list[int]) -> None:
    """Fail on any unaccepted finding, then on any accepted-finding entry that matched nothing."""
    if problems:
        pytest.fail(f"{problems_title}:\n  " + "\n  ".join(problems), pytrace=False)
    stale = [entry for entry, n in zip(entries, used) if n == 0]
    if stale:
        pytest.fail(f"{stale_title}: {stale}", pytrace=False)


def test_every_action_in_the_permissions_table_is_an_iam_action():
    """Also the entries no shipped stack uses yet (a type another layer or branch brings): a typo in an
    action name would otherwise first show in an account, as a refused call."""
    from model import permissions

    parliament = _parliament()

    def known(action: str) -> bool:
        try:
            return bool(parliament.expand_action(action))
        except parliament.UnknownActionException:
            return False

    unknown = sorted({f"{key}: {action}" for table in (permissions.RESOURCES, permissions.DATA, permissions.SCRIPTS,
                                                       permissions.BACKENDS)
                      for key, grants in table.items() for grant in grants for action in grant.actions
                      if not known(action)})
    assert not unknown, f"not IAM actions (parliament {parliament.__version__}'s database): {unknown}"
