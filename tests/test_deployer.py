"""The deployer policy (model/permissions.py, ``python -m stacks.deployer``): complete for every
synthesized stack, within IAM's size limits, scoped to the environment's own names.

What the emulator proves (that the policy is *enough*: rung a applies, re-plans, plans every
change-impact variant and destroys as an identity holding only it) is in tests/test_emulator.py;
parliament lints it in tests/test_scans.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from model import permissions
from tests.conftest import ROOT
from tests.progress import progress

ACCOUNT = "123456789012"  # the length of every real account id: sizes are measured with it


def stacks(synth) -> list[str]:
    return sorted(p.name for p in (synth.outdir / "stacks").iterdir())


def test_every_type_script_and_backend_of_every_stack_has_an_entry(synth):
    names = stacks(synth)
    assert {"dev", "prod", "t-cloud", "t-alt", "state-bootstrap"} <= set(names), names
    gaps = {name: permissions.missing(synth[name]) for name in names}
    assert not any(gaps.values()), (
        "model/permissions.py has no entry for (add what the aws provider calls for each, by phase): "
        + json.dumps({k: v for k, v in gaps.items() if v}, indent=1))


def test_a_new_type_without_an_entry_is_named_and_no_policy_is_made(synth):
    doc = copy.deepcopy(synth["dev"])
    doc["resource"]["aws_lb"] = {"x": {}}
    doc["data"]["aws_ami"] = {"y": {}}
    doc["resource"]["terraform_data"]["z"] = {"//": {"metadata": {"path": "dev/network/new-wait"}},
                                              "provisioner": [{"local-exec": {"command": "true"}}]}
    assert permissions.missing(doc) == ["data aws_ami", "resource aws_lb", "script network/new-wait"]
    with pytest.raises(permissions.MissingEntry, match="no entry for data aws_ami, resource aws_lb, "
                                                       "script network/new-wait"):
        permissions.deployer_policy(doc, account=ACCOUNT)


@pytest.mark.parametrize("name", ["dev", "prod", "t-cloud", "t-alt", "state-bootstrap"])
def test_the_policy_fits_iam_limits(synth, name):
    """Each managed policy within 6,144 characters (whitespace not counted), at most 10 per role;
    t-alt carries the longest cluster name the config accepts."""
    documents = permissions.deployer_policy(synth[name], account=ACCOUNT).documents
    sizes = [len(permissions.compact(d)) for d in documents]
    assert sizes and max(sizes) <= permissions.POLICY_MAX_CHARS, sizes
    assert len(documents) <= permissions.POLICIES_PER_ROLE, sizes
    sids = [s["Sid"] for d in documents for s in d["Statement"]]
    assert len(sids) == len(set(sids)), sids


def test_every_needed_action_is_in_the_policy_once_packed(synth):
    for name in ("dev", "t-alt"):
        doc = synth[name]
        packed = {a for d in permissions.deployer_policy(doc, account=ACCOUNT).documents
                  for s in d["Statement"] for a in s["Action"]}
        assert packed == permissions.actions(doc)


def _statements(doc: dict, **kw) -> list[dict]:
    return [s for d in permissions.deployer_policy(doc, account=ACCOUNT, **kw).documents for s in d["Statement"]]


def _granting(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if action in s["Action"]]


def test_the_policy_is_scoped_to_the_environment(synth):
    doc = synth["dev"]
    statements = _statements(doc)
    name = "platform-dev"
    # IAM: only the stack's own roles, by their literal names; no wildcard role
    (roles,) = _granting(statements, "iam:CreateRole")
    assert sorted(roles["Resource"]) == sorted(
        f"arn:aws:iam::{ACCOUNT}:role/{b['name']}" for b in doc["resource"]["aws_iam_role"].values())
    # PassRole only to the service each role is for
    passed = set()
    for s in _granting(statements, "iam:PassRole"):
        value = s["Condition"]["StringEquals"]["iam:PassedToService"]
        passed.update([value] if isinstance(value, str) else value)
    assert passed == {"eks.amazonaws.com", "ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"}
    # only the create call itself is conditioned on the request's tags; what follows it, on the resource's
    keys = [set(s.get("Condition", {}).get("StringEquals", {})) for s in _granting(statements, "ec2:ModifyVpcAttribute")]
    assert keys == [{"aws:ResourceTag/Cluster"}], keys
    # only the policies the stack attaches can be attached to its roles
    (attach,) = _granting(statements, "iam:AttachRolePolicy")
    arns = attach["Condition"]["ArnEquals"]["iam:PolicyARN"]
    assert "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy" in arns
    assert not any("AdministratorAccess" in a or a.endswith("*") for a in arns), arns
    # EKS: this cluster's ARNs only; CreateCluster (authorized on "*") only with the stack's tag in its region
    for s in _granting(statements, "eks:DeleteCluster") + _granting(statements, "eks:DeleteNodegroup"):
        assert all(f"/{name}" in r for r in s["Resource"]), s
    (create_cluster,) = _granting(statements, "eks:CreateCluster")
    assert create_cluster["Condition"]["StringEquals"] == {"aws:RequestTag/Cluster": name,
                                                           "aws:RequestedRegion": ["us-west-2"]}
    # EC2 creates only with the stack's Cluster tag, mutations in its region, no EC2 action elsewhere
    (create_vpc,) = _granting(statements, "ec2:CreateVpc")
    assert create_vpc["Condition"]["StringEquals"]["aws:RequestTag/Cluster"] == name
    assert create_vpc["Resource"] == f"arn:aws:ec2:us-west-2:{ACCOUNT}:*"
    (delete_vpc,) = _granting(statements, "ec2:DeleteVpc")
    assert delete_vpc["Resource"] == f"arn:aws:ec2:us-west-2:{ACCOUNT}:*"
    assert delete_vpc["Condition"]["StringEquals"]["aws:ResourceTag/Cluster"] == name
    unscoped = [s["Sid"] for s in statements if s["Resource"] == "*" and "Condition" not in s
                and any(not a.startswith(("iam:", "sts:")) for a in s["Action"])]
    assert not unscoped, f"statements on every resource of every region: {unscoped}"
    # the state backend: this environment's state object and lock file only
    (objects,) = _granting(statements, "s3:PutObject")
    assert objects["Resource"] == ["arn:aws:s3:::my-org-terraform-state/dev/terraform.tfstate",
                                   "arn:aws:s3:::my-org-terraform-state/dev/terraform.tfstate.tflock"]


def test_the_plan_policy_reads_only(synth):
    writes = ("Create", "Delete", "Put", "Update", "Attach", "Detach", "Tag", "Untag", "Modify", "Associate",
              "Allocate", "Release", "Revoke", "Authorize", "Schedule", "Enable", "Disable", "Pass", "Replace",
              "Remove", "Add", "Set", "Disassociate")
    statements = _statements(synth["dev"], phases=("read",))
    found = {a for s in statements for a in s["Action"]
             if a.split(":")[1].startswith(writes) and not a.startswith("s3:")}  # s3: the state and its lock
    assert not found, found
    assert {"eks:DescribeCluster", "servicequotas:GetServiceQuota", "ec2:DescribeAvailabilityZones",
            "iam:ListRoles", "logs:DescribeLogGroups"} <= {a for s in statements for a in s["Action"]}


def test_destroy_time_steps_and_the_preflight_are_in_it(synth):
    exec_ = permissions.actions(synth["dev"])
    token = permissions.actions(synth["t-cloud"])  # token mode: no destroy-time scripts
    teardown = {"elasticloadbalancing:DeleteLoadBalancer", "ec2:DeleteNetworkInterface"}
    assert teardown | {"ec2:DescribeInstances"} <= exec_
    assert not teardown & token
    # every plan, both modes: a zone's removal is refused under this cluster's nodes and volumes
    assert {"ec2:DescribeInstances", "ec2:DescribeVolumes"} <= token
    assert {"servicequotas:GetServiceQuota", "servicequotas:GetAWSDefaultServiceQuota", "ec2:DescribeAddresses",
            "iam:ListRoles"} <= exec_


def test_the_command_prints_the_policy_and_refuses_an_unknown_environment():
    proc = subprocess.run([sys.executable, "-m", "stacks.deployer", "nosuch"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no environment named nosuch: choose one of "), lines
    proc = subprocess.run([sys.executable, "-m", "stacks.deployer", "dev", "--account", "12345"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr.strip()) == (2, "error: --account 12345: an AWS account id is 12 digits")


def test_render_is_the_documents_as_json(synth):
    from stacks.deployer import render

    doc = synth["dev"]
    assert json.loads(render(doc, account=ACCOUNT)) == permissions.deployer_policy(doc, account=ACCOUNT).documents
    why = render(doc, why=True).splitlines()
    assert "eks:CreateCluster: resource aws_eks_cluster" in why
    assert any(line.startswith("elasticloadbalancing:DeleteLoadBalancer: script teardown/sweep") for line in why)


# ----------------------------------------------------------------------------- on the emulator: each action is needed

def without(documents: list[dict], action: str) -> list[dict]:
    """``documents`` with ``action`` taken out of every statement (a statement left empty goes)."""
    out = []
    for document in documents:
        statements = [{**s, "Action": [a for a in s["Action"] if a != action]} for s in document["Statement"]]
        out.append({**document, "Statement": [s for s in statements if s["Action"]]})
    return [d for d in out if d["Statement"]]


# (layer, the action taken away, what runs, the address a targeted apply creates)
NEGATIVES = [
    ("preflight (Service Quotas read at plan)", "servicequotas:GetServiceQuota", "plan", None),
    ("cluster (EKS: the version guard's read at plan)", "eks:ListClusters", "plan", None),
    ("iam (the cluster role, at apply)", "iam:CreateRole", "apply", "aws_iam_role.iam_cluster-role"),
    ("teardown (the sweep after the cluster, at destroy)", "eks:DescribeCluster", "sweep", None),
]


@pytest.mark.emulator
def test_without_one_action_the_run_fails_access_denied_naming_it(emulator, emulator_synth, tmp_path):
    """Each layer's action is really needed: the deployer policy minus that one action, and the
    plan, the apply or the destroy-time step fails with AccessDenied naming it (the emulator
    enforces IAM; every other call of the run is allowed)."""
    from model.teardown import ATTEMPTS, SWEEP
    from tests.emulator.server import ACCOUNT_ID, bootstrapped
    from tests.emulator.tfrun import run
    from tests.tf import Terraform, available_providers, strip_unavailable

    full = emulator_synth["emulator"]
    doc, _ = strip_unavailable(full, available_providers(full))
    policy = permissions.deployer_policy(full, account=ACCOUNT_ID).documents
    emulator.reset()
    bootstrapped(emulator)
    with emulator.enforce_iam(policy) as identity:
        tf = Terraform(tmp_path / "negatives", env=emulator.terraform_env())
        tf.write(doc)
        tf.run("init", "-no-color", "-input=false", label="negatives: init", timeout=180)
        failures = []
        for layer, action, what, address in NEGATIVES:
            emulator.set_policies("deployer", without(policy, action))
            if what == "sweep":
                env = {**tf.env, "CLUSTER": "platform-emu", "REGION": "us-east-1", "VPC": "vpc-00000000",
                       "ATTEMPTS": str(ATTEMPTS), "TEARDOWN_SCRIPT": SWEEP}
                # as constructs/teardown.py's destroy-time step runs it
                proc = subprocess.run(["sh", "-c", 'sh -c "$TEARDOWN_SCRIPT" sweep'], env=env, capture_output=True,
                                      text=True, timeout=120)
                rc, output = proc.returncode, proc.stdout + proc.stderr
            else:
                targets = [f"-target=aws_iam_role.{a}" for a in doc["resource"]["aws_iam_role"] if address and
                           f"aws_iam_role.{a}".startswith(address)]
                job = run(tf, what, *(["-auto-approve"] if what == "apply" else []), *targets, "-no-color",
                          "-input=false", label=f"negatives: {what} without {action}", timeout=300, check=False)
                rc, output = job.proc.returncode, job.output
            named = f"not authorized to perform: {action}" in output and identity in output
            if rc == 0 or not named:
                failures.append(f"{layer}: without {action} the {what} {'passed' if rc == 0 else 'failed otherwise'}:"
                                f"\n{output[-2500:]}")
            else:
                line = next(l for l in output.splitlines() if f"not authorized to perform: {action}" in l)
                progress(f"[deployer] {layer}: without {action}, the {what} fails: ...{line[line.index('User: '):][:160]}")
    assert not failures, "\n\n".join(failures)


def test_a_change_of_resource_types_needs_the_policy_of_both_sides(synth):
    """irsa -> pod_identity creates associations, pod_identity -> irsa deletes them: the policy for the
    change (merged) has both sides' actions, each side alone lacks the other's."""
    irsa, pod_identity = synth["dev"], synth["t-alt"]  # t-alt: cluster.pod_credentials pod_identity
    assert "aws_eks_pod_identity_association" in pod_identity["resource"]
    assert "aws_eks_pod_identity_association" not in irsa["resource"]
    both = permissions.actions(permissions.merged(irsa, pod_identity))
    assert "eks:DeletePodIdentityAssociation" in both - permissions.actions(irsa)
    assert permissions.actions(irsa) <= both and permissions.actions(pod_identity) <= both


def test_the_command_covers_both_sides_of_a_change_with_before(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "stacks/environments/dev.yaml").read_text())
    config["cluster"]["pod_credentials"] = "pod_identity"  # as applied now; the file moves back to irsa
    before = tmp_path / "dev.yaml"
    before.write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "stacks.deployer", "dev", "--why", "--before", str(before)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "eks:DeletePodIdentityAssociation: resource aws_eks_pod_identity_association" in proc.stdout.splitlines()
